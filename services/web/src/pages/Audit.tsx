import { useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { api, unwrap } from "../api/client";
import { canReadAudit, useMe } from "../auth";
import { ErrorBox, formatDate, inputClass, Loading, PageTitle, secondaryButtonClass } from "../ui";

const PAGE = 50;

export default function Audit() {
  const me = useMe();
  const [entityType, setEntityType] = useState("");
  const [actor, setActor] = useState("");
  const [offset, setOffset] = useState(0);
  const allowed = me.data ? canReadAudit(me.data.role) : true;
  const entries = useQuery({
    queryKey: ["audit", entityType, actor, offset],
    queryFn: () =>
      unwrap(api.GET("/api/audit", { params: { query: { entityType: entityType || undefined, actor: actor || undefined, limit: PAGE, offset } } })),
    enabled: allowed,
  });
  return (
    <div>
      <PageTitle>Audit log</PageTitle>
      {!allowed ? <p>The audit log is open to auditors, editors and admins; your role is {me.data?.role}.</p> : null}
      <div className="mb-4 grid max-w-xl grid-cols-2 gap-3">
        <div>
          <label htmlFor="entityType" className="block text-sm font-medium">Entity type</label>
          <input id="entityType" className={inputClass} value={entityType} onChange={(e) => { setEntityType(e.target.value); setOffset(0); }} placeholder="workflow, job, table…" />
        </div>
        <div>
          <label htmlFor="actor" className="block text-sm font-medium">Actor</label>
          <input id="actor" className={inputClass} value={actor} onChange={(e) => { setActor(e.target.value); setOffset(0); }} />
        </div>
      </div>
      {entries.isLoading && allowed ? <Loading what="the audit log" /> : null}
      <ErrorBox error={entries.error} />
      {entries.data ? (
        <>
          <p className="mb-2 text-sm">{entries.data.count} entries</p>
          <table className="w-full border-collapse bg-white text-sm">
            <thead>
              <tr className="border-b border-slate-300 text-left">
                <th className="p-2">When</th>
                <th className="p-2">Actor</th>
                <th className="p-2">Action</th>
                <th className="p-2">Entity</th>
                <th className="p-2">Change</th>
              </tr>
            </thead>
            <tbody>
              {entries.data.data.map((entry) => (
                <tr key={entry.id} className="border-b border-slate-200 align-top">
                  <td className="whitespace-nowrap p-2">{formatDate(entry.at)}</td>
                  <td className="p-2">{entry.actor}</td>
                  <td className="p-2 font-mono">{entry.action}</td>
                  <td className="p-2">{entry.entityType} <span className="font-mono text-xs">{entry.entityId.slice(0, 12)}</span></td>
                  <td className="p-2">
                    {entry.diff ? (
                      <details>
                        <summary className="cursor-pointer">details</summary>
                        <pre className="max-w-xl overflow-auto whitespace-pre-wrap text-xs">{JSON.stringify(entry.diff, null, 2)}</pre>
                      </details>
                    ) : "—"}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <div className="mt-3 flex gap-2">
            <button type="button" className={secondaryButtonClass} disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>Newer</button>
            <button type="button" className={secondaryButtonClass} disabled={offset + PAGE >= entries.data.count} onClick={() => setOffset(offset + PAGE)}>Older</button>
          </div>
        </>
      ) : null}
    </div>
  );
}
