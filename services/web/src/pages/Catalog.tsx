import { Link, useSearchParams } from "react-router-dom";
import { useQuery } from "@tanstack/react-query";
import { api, unwrap } from "../api/client";
import { ErrorBox, formatDate, formatNumber, inputClass, Loading, PageTitle } from "../ui";

const LAYERS = ["bronze", "silver", "gold"] as const;

export default function Catalog() {
  const [params, setParams] = useSearchParams();
  const layer = params.get("layer") ?? "";
  const assets = useQuery({
    queryKey: ["assets", layer],
    queryFn: () =>
      unwrap(api.GET("/api/catalog/assets", { params: { query: layer ? { layer: layer as (typeof LAYERS)[number] } : {} } })),
  });
  return (
    <div>
      <PageTitle>Data catalog</PageTitle>
      <div className="mb-4 max-w-xs">
        <label htmlFor="layer" className="block text-sm font-medium">Layer</label>
        <select id="layer" className={inputClass} value={layer} onChange={(e) => setParams(e.target.value ? { layer: e.target.value } : {})}>
          <option value="">All layers</option>
          {LAYERS.map((value) => <option key={value}>{value}</option>)}
        </select>
      </div>
      {assets.isLoading ? <Loading what="tables" /> : null}
      <ErrorBox error={assets.error} />
      {assets.data && !assets.data.data.length ? <p>No table yet: tables appear here after a job writes them.</p> : null}
      {assets.data?.data.length ? (
        <table className="w-full border-collapse bg-white text-sm">
          <thead>
            <tr className="border-b border-slate-300 text-left">
              <th className="p-2">Table</th>
              <th className="p-2">Layer</th>
              <th className="p-2 text-right">Rows</th>
              <th className="p-2">Columns</th>
              <th className="p-2">Last updated</th>
              <th className="p-2">Written by</th>
            </tr>
          </thead>
          <tbody>
            {assets.data.data.map((asset) => (
              <tr key={asset.table} className="border-b border-slate-200">
                <td className="p-2 font-mono"><Link to={`/catalog/${asset.table}`} className="text-indigo-800 hover:underline">{asset.table}</Link></td>
                <td className="p-2">{asset.layer}</td>
                <td className="p-2 text-right">{formatNumber(asset.rowCount)}</td>
                <td className="p-2">{asset.columns.length}</td>
                <td className="p-2">{formatDate(asset.lastUpdated)}</td>
                <td className="p-2">{asset.producingJobName ?? "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </div>
  );
}
