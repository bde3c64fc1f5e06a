import { useMemo, useState } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { useQuery } from "@tanstack/react-query";
import { api, unwrap } from "../api/client";
import { ErrorBox, inputClass, Loading, PageTitle } from "../ui";
import { filterTemplates } from "../templates";

export default function Templates() {
  const [params, setParams] = useSearchParams();
  const [q, setQ] = useState(params.get("q") ?? "");
  const industry = params.get("industry") ?? "";
  const category = params.get("category") ?? "";
  const templates = useQuery({
    queryKey: ["templates"],
    queryFn: () => unwrap(api.GET("/api/templates", {})),
  });
  const all = useMemo(() => templates.data?.data ?? [], [templates.data]);
  const industries = [...new Set(all.map((t) => t.industryVertical).filter(Boolean))] as string[];
  const categories = [...new Set(all.map((t) => t.category))];
  const shown = filterTemplates(all, { q, industry, category });

  function setFilter(name: string, value: string) {
    const next = new URLSearchParams(params);
    if (value) next.set(name, value);
    else next.delete(name);
    setParams(next, { replace: true });
  }

  return (
    <div>
      <PageTitle>Template gallery</PageTitle>
      <div className="mb-4 grid max-w-3xl grid-cols-1 gap-3 sm:grid-cols-3" role="search">
        <div>
          <label htmlFor="q" className="block text-sm font-medium">Search</label>
          <input id="q" className={inputClass} value={q} onChange={(e) => setQ(e.target.value)} placeholder="name, tag, use case" />
        </div>
        <div>
          <label htmlFor="industry" className="block text-sm font-medium">Industry</label>
          <select id="industry" className={inputClass} value={industry} onChange={(e) => setFilter("industry", e.target.value)}>
            <option value="">All industries</option>
            {industries.map((value) => <option key={value}>{value}</option>)}
          </select>
        </div>
        <div>
          <label htmlFor="category" className="block text-sm font-medium">Category</label>
          <select id="category" className={inputClass} value={category} onChange={(e) => setFilter("category", e.target.value)}>
            <option value="">All categories</option>
            {categories.map((value) => <option key={value}>{value}</option>)}
          </select>
        </div>
      </div>
      {templates.isLoading ? <Loading what="templates" /> : null}
      <ErrorBox error={templates.error} />
      {templates.isSuccess && shown.length === 0 ? <p>No template matches these filters.</p> : null}
      <ul className="grid grid-cols-1 gap-4 md:grid-cols-2 xl:grid-cols-3">
        {shown.map((template) => (
          <li key={template.id} className="rounded-lg border border-slate-300 bg-white p-4 shadow-sm">
            <h2 className="text-lg font-semibold">
              <Link to={`/templates/${template.id}`} className="text-indigo-800 hover:underline">
                {template.name}
              </Link>
            </h2>
            <p className="mt-1 text-xs uppercase tracking-wide text-slate-700">
              {[template.industryVertical, template.category, template.useCase].filter(Boolean).join(" · ")}
            </p>
            <p className="mt-2 text-sm text-slate-800">{template.description}</p>
            <ul className="mt-3 flex flex-wrap gap-1" aria-label="Tags">
              {template.tags.map((tag) => (
                <li key={tag} className="rounded bg-slate-100 px-2 py-0.5 text-xs text-slate-800">{tag}</li>
              ))}
            </ul>
          </li>
        ))}
      </ul>
    </div>
  );
}
