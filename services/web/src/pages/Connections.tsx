import { useState } from "react";
import { canEdit, useMe } from "../auth";
import { ConnectionForm } from "../components/ConnectionForm";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, unwrap, type Schemas } from "../api/client";
import { buttonClass, ErrorBox, formatDate, Loading, PageTitle, secondaryButtonClass } from "../ui";

export default function Connections() {
  const me = useMe();
  const [adding, setAdding] = useState(false);
  const [editing, setEditing] = useState<Schemas["ConnectionPublic"] | null>(null);
  const editor = canEdit(me.data?.role);
  const connections = useQuery({
    queryKey: ["connections"],
    queryFn: () => unwrap(api.GET("/api/connections", {})),
  });
  return (
    <div>
      <PageTitle
        actions={editor && !adding && !editing ? <button type="button" className={buttonClass} onClick={() => setAdding(true)}>New connection</button> : null}
      >
        Connections
      </PageTitle>
      <p className="mb-4 max-w-3xl text-sm text-slate-700">
        Saved database connections. Passwords are never shown: editing one, leave the password empty to keep the stored one.
      </p>
      {adding ? <ConnectionForm onDone={() => setAdding(false)} /> : null}
      {editing ? <ConnectionForm key={editing.id} connection={editing} onDone={() => setEditing(null)} /> : null}
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
              {editor ? <th className="p-2">Change</th> : null}
            </tr>
          </thead>
          <tbody>
            {connections.data.data.map((connection) => <ConnectionRow key={connection.id} connection={connection} editor={editor} onEdit={() => { setAdding(false); setEditing(connection); }} />)}
          </tbody>
        </table>
      ) : null}
    </div>
  );
}

function ConnectionRow({ connection, editor, onEdit }: { connection: Schemas["ConnectionPublic"]; editor: boolean; onEdit: () => void }) {
  const queryClient = useQueryClient();
  const [confirming, setConfirming] = useState(false);
  const remove = useMutation({
    mutationFn: () => unwrap(api.DELETE("/api/connections/{connection_id}", { params: { path: { connection_id: connection.id } } })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ["connections"] }),
  });
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
      {editor ? (
        <td className="p-2">
          <div className="flex flex-wrap gap-2">
            <button type="button" className={secondaryButtonClass} onClick={onEdit} aria-label={`Edit ${connection.name}`}>Edit</button>
            {confirming ? (
              <span role="group" aria-label={`Confirm deleting ${connection.name}`} className="flex items-center gap-2">
                <span>Delete it?</span>
                <button type="button" className={buttonClass} onClick={() => remove.mutate()} disabled={remove.isPending}>Delete</button>
                <button type="button" className={secondaryButtonClass} onClick={() => { setConfirming(false); remove.reset(); }}>Keep</button>
              </span>
            ) : (
              <button type="button" className={secondaryButtonClass} onClick={() => setConfirming(true)} aria-label={`Delete ${connection.name}`}>Delete</button>
            )}
          </div>
          <ErrorBox error={remove.error} />
        </td>
      ) : null}
    </tr>
  );
}
