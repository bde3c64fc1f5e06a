import { useState } from "react";
import { canEdit, useMe } from "../auth";
import { ConnectionForm } from "../components/ConnectionForm";
import { useQuery } from "@tanstack/react-query";
import { api, unwrap, type Schemas } from "../api/client";
import { buttonClass, ErrorBox, formatDate, Loading, PageTitle, secondaryButtonClass } from "../ui";

export default function Connections() {
  const me = useMe();
  const [adding, setAdding] = useState(false);
  const connections = useQuery({
    queryKey: ["connections"],
    queryFn: () => unwrap(api.GET("/api/connections", {})),
  });
  return (
    <div>
      <PageTitle
        actions={canEdit(me.data?.role) && !adding ? <button type="button" className={buttonClass} onClick={() => setAdding(true)}>New connection</button> : null}
      >
        Connections
      </PageTitle>
      <p className="mb-4 max-w-3xl text-sm text-slate-700">
        Saved database connections (passwords are never shown). Editing one here is not built yet (<code>PATCH /api/connections/&#123;id&#125;</code>).
      </p>
      {adding ? <ConnectionForm onDone={() => setAdding(false)} /> : null}
      {connections.isLoading ? <Loading what="connections" /> : null}
      <ErrorBox error={connections.error} />
      {connections.data && !connections.data.data.length ? <p>No saved connection.</p> : null}
      {connections.data?.data.length ? (
        <table className="w-full border-collapse bg-white text-sm">
          <thead>
            <tr className="border-b border-slate-300 text-left">
              <th className="p-2">Name</th>
              <th className="p-2">Type</th>
              <th className="p-2">Where</th>
              <th className="p-2">Created</th>
              <th className="p-2">Test</th>
            </tr>
          </thead>
          <tbody>
            {connections.data.data.map((connection) => <ConnectionRow key={connection.id} connection={connection} />)}
          </tbody>
        </table>
      ) : null}
    </div>
  );
}

function ConnectionRow({ connection }: { connection: Schemas["ConnectionPublic"] }) {
  const [result, setResult] = useState<{ success: boolean; message: string } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  async function test() {
    setBusy(true);
    setError(null);
    setResult(null);
    try {
      const answer = await unwrap(api.POST("/api/test-connection/database", { body: { connectionId: connection.id } as never }));
      setResult(answer as { success: boolean; message: string });
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  }
  const where = [connection.host && `${connection.host}${connection.port ? `:${connection.port}` : ""}`, connection.database].filter(Boolean).join(" / ");
  return (
    <tr className="border-b border-slate-200 align-top">
      <td className="p-2">{connection.name}</td>
      <td className="p-2">{connection.type}</td>
      <td className="p-2">{where || "—"}</td>
      <td className="p-2">{formatDate(connection.createdAt)}</td>
      <td className="p-2">
        <button type="button" className={secondaryButtonClass} onClick={test} disabled={busy}>
          {busy ? "Testing…" : "Test connection"}
        </button>
        {result ? (
          <p role="status" className={`mt-1 ${result.success ? "text-green-800" : "text-red-800"}`}>{result.message}</p>
        ) : null}
        <ErrorBox error={error} />
      </td>
    </tr>
  );
}
