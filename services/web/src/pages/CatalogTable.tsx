import { Link, useParams } from "react-router-dom";
import { useQuery } from "@tanstack/react-query";
import { api, unwrap } from "../api/client";
import { ErrorBox, formatDate, formatNumber, Loading, PageTitle } from "../ui";

interface Sample {
  columns: string[];
  rows: unknown[][];
  version: number;
  /** column → what it holds (email, phone, ...): the columns that identify a person */
  pii?: Record<string, string>;
  /** true when those columns' values came back masked (a viewer's sample) */
  masked?: boolean;
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return "∅";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

export default function CatalogTable() {
  const { table = "" } = useParams();
  const path = { params: { path: { table } } };
  const asset = useQuery({
    queryKey: ["asset", table],
    queryFn: () => unwrap(api.GET("/api/catalog/assets/{table}", path)),
  });
  const sample = useQuery({
    queryKey: ["asset-sample", table],
    queryFn: async () =>
      (await unwrap(api.GET("/api/catalog/assets/{table}/sample", { params: { path: { table }, query: { limit: 20 } } }))) as unknown as Sample,
    enabled: asset.isSuccess,
  });
  const history = useQuery({
    queryKey: ["asset-history", table],
    queryFn: () => unwrap(api.GET("/api/catalog/assets/{table}/history", { params: { path: { table }, query: { limit: 20 } } })),
    enabled: asset.isSuccess,
  });

  if (asset.isLoading) return <Loading what="the table" />;
  if (!asset.data) return <ErrorBox error={asset.error} />;
  const a = asset.data;
  const commits = ((history.data as { data?: unknown[] } | undefined)?.data ?? []) as { version: number; timestamp: string | number | null; operation: string; actor?: string | null; executionId?: string | null }[];

  return (
    <div>
      <p className="mb-2 text-sm"><Link to="/catalog" className="text-indigo-800 underline">Data catalog</Link></p>
      <PageTitle><span className="font-mono">{a.table}</span></PageTitle>
      <dl className="mb-6 grid max-w-3xl grid-cols-[10rem_1fr] gap-y-1 text-sm">
        <dt className="font-medium">Layer</dt><dd>{a.layer}</dd>
        <dt className="font-medium">Rows</dt><dd data-testid="row-count">{formatNumber(a.rowCount)}</dd>
        <dt className="font-medium">Delta version</dt><dd>{a.version ?? "—"}</dd>
        <dt className="font-medium">Last updated</dt><dd>{formatDate(a.lastUpdated)}</dd>
        <dt className="font-medium">Written by</dt>
        <dd>
          {a.producingJobName ?? "—"}
          {a.producingExecutionId ? <> (<Link className="text-indigo-800 underline" to={`/executions/${a.producingExecutionId}`}>its run</Link>)</> : null}
        </dd>
        <dt className="font-medium">Location</dt><dd className="break-all font-mono text-xs">{a.location ?? "—"}</dd>
      </dl>
      <h2 className="mb-2 text-lg font-semibold">Schema ({a.columns.length} columns)</h2>
      <table className="mb-6 w-full max-w-3xl border-collapse bg-white text-sm">
        <thead>
          <tr className="border-b border-slate-300 text-left">
            <th className="p-2">Column</th>
            <th className="p-2">Type</th>
            <th className="p-2">Nullable</th>
          </tr>
        </thead>
        <tbody>
          {a.columns.map((column) => (
            <tr key={column.name} className="border-b border-slate-200">
              <td className="p-2 font-mono">{column.name}</td>
              <td className="p-2">{column.type}</td>
              <td className="p-2">{column.nullable ? "yes" : "no"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2 className="mb-2 text-lg font-semibold">Sample rows</h2>
      <ErrorBox error={sample.error} />
      {sample.isLoading ? <Loading what="sample rows" /> : null}
      {sample.data?.masked ? (
        <p role="note" data-testid="pii-masked" className="mb-2 max-w-3xl rounded border border-amber-300 bg-amber-50 p-2 text-sm text-amber-950">
          Columns that identify a person are masked (****) for your role: {Object.entries(sample.data.pii ?? {}).map(([column, kind]) => `${column} (${kind})`).join(", ")}.
        </p>
      ) : sample.data?.pii && Object.keys(sample.data.pii).length ? (
        <p className="mb-2 max-w-3xl text-sm text-slate-700">Columns marked PII identify a person: viewers see them masked.</p>
      ) : null}
      {sample.data ? (
        <div className="mb-6 max-h-[28rem] overflow-auto rounded border border-slate-300" tabIndex={0} role="region" aria-label="Sample rows">
          <table className="border-collapse bg-white text-xs" data-testid="sample-rows">
            <caption className="sr-only">The first {sample.data.rows.length} rows of version {sample.data.version}</caption>
            <thead className="sticky top-0 bg-slate-100">
              <tr className="text-left">
                {sample.data.columns.map((column) => (
                  <th key={column} className="whitespace-nowrap p-2 font-mono" data-pii={sample.data?.pii?.[column] ?? undefined}>
                    {column}
                    {sample.data?.pii?.[column] ? <span className="ml-1 rounded bg-amber-100 px-1 font-sans text-amber-950" title={sample.data.pii[column]}>PII</span> : null}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {sample.data.rows.map((row, index) => (
                <tr key={index} className="border-t border-slate-200">
                  {row.map((value, column) => <td key={column} className="whitespace-nowrap p-2">{cell(value)}</td>)}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <h2 className="mb-2 text-lg font-semibold">History</h2>
      <ErrorBox error={history.error} />
      {history.isLoading ? <Loading what="the history" /> : null}
      {commits.length ? (
        <table className="w-full max-w-3xl border-collapse bg-white text-sm">
          <thead>
            <tr className="border-b border-slate-300 text-left">
              <th className="p-2">Version</th>
              <th className="p-2">When</th>
              <th className="p-2">Operation</th>
              <th className="p-2">By</th>
            </tr>
          </thead>
          <tbody>
            {commits.map((commit) => (
              <tr key={commit.version} className="border-b border-slate-200">
                <td className="p-2">{commit.version}</td>
                <td className="p-2">{commit.timestamp === null ? "—" : formatDate(typeof commit.timestamp === "number" ? new Date(commit.timestamp).toISOString() : commit.timestamp)}</td>
                <td className="p-2">{commit.operation}</td>
                <td className="p-2">{commit.actor ?? (commit.executionId ? `run ${commit.executionId.slice(0, 8)}` : "—")}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </div>
  );
}
