import { Suspense } from "react";
import { NavLink, Outlet, useLocation, useNavigate } from "react-router-dom";
import { ErrorBoundary } from "./ErrorBoundary";
import { useQueryClient } from "@tanstack/react-query";
import { setToken } from "./api/client";
import { canReadAudit, useMe } from "./auth";
import { ErrorBox, Loading } from "./ui";

const LINKS = [
  { to: "/workflows", label: "Workflows" },
  { to: "/templates", label: "Templates" },
  { to: "/catalog", label: "Catalog" },
  { to: "/connections", label: "Connections" },
  { to: "/audit", label: "Audit", audit: true },
];

export function Layout() {
  const me = useMe();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const role = me.data?.role;
  const location = useLocation();

  function signOut() {
    setToken(null);
    queryClient.clear();
    navigate("/login");
  }

  return (
    <div className="flex min-h-screen">
      <a href="#main" className="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:bg-white focus:p-2">
        Skip to content
      </a>
      <nav aria-label="Main" className="w-52 shrink-0 bg-slate-900 p-4 text-slate-100">
        <div className="mb-6 text-lg font-bold text-white">FlowForge</div>
        <ul className="space-y-1">
          {LINKS.filter((link) => !link.audit || canReadAudit(role)).map((link) => (
            <li key={link.to}>
              <NavLink
                to={link.to}
                className={({ isActive }) =>
                  `block rounded px-3 py-2 text-sm ${isActive ? "bg-slate-700 text-white" : "text-slate-200 hover:bg-slate-800"}`
                }
              >
                {link.label}
              </NavLink>
            </li>
          ))}
        </ul>
        <div className="mt-8 border-t border-slate-700 pt-4 text-xs text-slate-300">
          {me.data ? (
            <p data-testid="whoami">
              Signed in as <strong className="text-white">{me.data.name}</strong>
              <br />
              role <strong className="text-white" data-testid="role">{me.data.role}</strong>
            </p>
          ) : null}
          <button type="button" onClick={signOut} className="mt-2 underline hover:text-white">
            Sign out
          </button>
        </div>
      </nav>
      <main id="main" className="min-w-0 flex-1 p-6">
        {me.error ? <ErrorBox error={me.error} /> : null}
        <ErrorBoundary resetKey={location.pathname}>
          <Suspense fallback={<Loading what="the page" />}>
            <Outlet />
          </Suspense>
        </ErrorBoundary>
      </main>
    </div>
  );
}
