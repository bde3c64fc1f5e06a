import { useMemo, useState } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { useQuery } from "@tanstack/react-query";
import { api, unwrap } from "../api/client";
import { ErrorBox, inputClass, Loading, PageTitle } from "../ui";
import { COMPLEXITIES, filterTemplates } from "../templates";

export default function Templates() {
  const [params, setParams] = useSearchParams();
  const [q, setQ] = useState(params.get("q") ?? "");
  const industry = params.get("industry") ?? "";
  const category = params.get("category") ?? "";
  const complexity = params.get("complexity") ?? "";
  const templates = useQuery({
    queryKey: ["templates"],
    queryFn: () => unwrap(api.GET("/api/templates", {})),
  });
  const all = useMemo(() => templates.data?.data ?? [], [templates.data]);
  const industries = [...new Set(all.map((t) => t.industryVertical).filter(Boolean))] as string[];
  const categories = [...new Set(all.map((t) => t.category))];
  const shown = filterTemplates(all, { q, industry, category, complexity });

  function setFilter(name: string, value: string) {
    const next = new URLSearchParams(params);
    if (value) next.set(name, value);
    else next.delete(name);
    setParams(next, { replace: true });
  }

  return (
    <div>
      <PageTitle>Template gallery</PageTitle>
      <div className="mb-4 grid max-w-4xl grid-cols-1 gap-3 sm:grid-cols-4" role="search">
        <div>
          <label htmlFor="q" className="block text-sm font-medium">Search</label>
          <input id="q" className={inputClass} value={q} onChange={(e) => setQ(e.target.value)} placeholder="name, tag, use case, table" />
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
        <div>
          <label htmlFor="complexity" className="block text-sm font-medium">Complexity</label>
          <select id="complexity" className={inputClass} value={complexity} onChange={(e) => setFilter("complexity", e.target.value)}>
            <option value="">Any complexity</option>
            {COMPLEXITIES.map((value) => <option key={value}>{value}</option>)}
          </select>
        </div>
      </div>
      {templates.isLoading ? <Loading what="templates" /> : null}
      <ErrorBox error={templates.error} />
      {templates.isSuccess && shown.length === 0 ? <p>No template matches these filters.</p> : null}
      <ul className="grid grid-cols-1 gap-4 md:grid-cols-2 xl:grid-cols-3">
        {shown.map((template) => (
          <li key={template.id} className="rounded-lg border border-slate-300 bg-white p-4 shadow-sm" data-testid="template-card">
            <h2 className="text-lg font-semibold">
              <Link to={`/templates/${template.id}`} className="text-indigo-800 hover:underline">
                {template.name}
              </Link>
            </h2>
            <p className="mt-1 text-xs uppercase tracking-wide text-slate-700">
              {[template.industryVertical, template.category, template.useCase].filter(Boolean).join(" · ")}
            </p>
            <dl className="mt-2 grid grid-cols-[auto_1fr] gap-x-3 text-sm">
              <dt className="font-medium">Industry</dt>
              <dd>{template.industryVertical ?? "—"}</dd>
              <dt className="font-medium">Category</dt>
              <dd>{template.category}</dd>
              <dt className="font-medium">Complexity</dt>
              <dd data-testid="complexity">{template.complexity}</dd>
              <dt className="font-medium">Estimated time</dt>
              <dd data-testid="estimated-time">about {template.estimatedMinutes} min to a first run</dd>
            </dl>
            <p className="mt-2 text-sm text-slate-800">{template.description}</p>
            <details className="mt-2 text-sm">
              <summary className="cursor-pointer font-medium">Creates {template.creates.length} jobs</summary>
              <ul className="mt-1 space-y-0.5" aria-label={`Jobs ${template.name} creates`}>
                {template.creates.map((job) => (
                  <li key={job.key}>
                    {job.name}
                    {job.writes ? <> → <code className="text-xs">{job.writes}</code></> : null}
                    {job.layer ? <span className="ml-1 rounded bg-slate-100 px-1 text-xs">{job.layer}</span> : null}
                  </li>
                ))}
              </ul>
            </details>
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
