import { lazy, Suspense, type ReactNode } from "react";
import { Navigate, Route, Routes, useLocation } from "react-router-dom";
import { Layout } from "./Layout";
import { getToken } from "./api/client";
import { Loading } from "./ui";

// One chunk per page: the first route loads only what it shows. The server answers
// index.html for each of these paths (shared/flowforge_shared/web.py WEB_UI_ROUTES).
const Login = lazy(() => import("./pages/Login"));
const Templates = lazy(() => import("./pages/Templates"));
const TemplateDetail = lazy(() => import("./pages/TemplateDetail"));
const Workflows = lazy(() => import("./pages/Workflows"));
const WorkflowDetail = lazy(() => import("./pages/WorkflowDetail"));
const Execution = lazy(() => import("./pages/Execution"));
const Catalog = lazy(() => import("./pages/Catalog"));
const CatalogTable = lazy(() => import("./pages/CatalogTable"));
const Connections = lazy(() => import("./pages/Connections"));
const Audit = lazy(() => import("./pages/Audit"));

function RequireToken({ children }: { children: ReactNode }) {
  const location = useLocation();
  if (!getToken()) {
    const next = location.pathname + location.search;
    return <Navigate to={`/login?next=${encodeURIComponent(next)}`} replace />;
  }
  return <>{children}</>;
}

export function AppRoutes() {
  return (
    <Suspense fallback={<Loading what="the page" />}>
      <Routes>
        <Route path="/login" element={<Login />} />
        <Route
          element={
            <RequireToken>
              <Layout />
            </RequireToken>
          }
        >
          <Route path="/" element={<Navigate to="/workflows" replace />} />
          <Route path="/templates" element={<Templates />} />
          <Route path="/templates/:id" element={<TemplateDetail />} />
          <Route path="/workflows" element={<Workflows />} />
          <Route path="/workflows/:id" element={<WorkflowDetail />} />
          <Route path="/executions/:id" element={<Execution />} />
          <Route path="/catalog" element={<Catalog />} />
          <Route path="/catalog/:table" element={<CatalogTable />} />
          <Route path="/connections" element={<Connections />} />
          <Route path="/audit" element={<Audit />} />
          <Route path="*" element={<NotFound />} />
        </Route>
      </Routes>
    </Suspense>
  );
}

function NotFound() {
  return (
    <div>
      <h1 className="text-2xl font-semibold">Page not found</h1>
      <p className="mt-2">This address is not a page of FlowForge.</p>
    </div>
  );
}
