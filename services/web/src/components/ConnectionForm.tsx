import { useState, type FormEvent } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { ApiError, api, problemsByField, problemsFor, unwrap, type Schemas } from "../api/client";
import { buttonClass, ErrorBox, inputClass, secondaryButtonClass } from "../ui";

type ConnectionType = Schemas["ConnectionCreate"]["type"];
type Authentication = Schemas["Authentication"];
const TYPES: ConnectionType[] = ["sql-server", "postgresql", "mysql", "oracle", "snowflake", "sqlite"];
const AUTHENTICATIONS: Authentication[] = ["sql", "windows", "azure-ad-password", "azure-ad-service-principal", "azure-ad-managed-identity", "azure-ad-access-token"];
const FIELDS = ["host", "port", "database", "username", "password"] as const;
type Field = (typeof FIELDS)[number];

/** Create a connection, or edit one: its fields or a pasted connection string (ADO.NET, ODBC,
 * libpq or a URL: the API parses it into the fields), Test connection (the server's exact
 * message), Save. The password is sent, never shown back: editing, an empty password field
 * keeps the stored one (the API does the same with ""). */
export function ConnectionForm({ onDone, connection }: { onDone: () => void; connection?: Schemas["ConnectionPublic"] }) {
  const queryClient = useQueryClient();
  const [name, setName] = useState(connection?.name ?? "");
  const [type, setType] = useState<ConnectionType>((connection?.type as ConnectionType | undefined) ?? "sql-server");
  const [authentication, setAuthentication] = useState<Authentication>((connection?.authentication as Authentication | undefined) ?? "sql");
  const [values, setValues] = useState<Record<Field, string>>({
    host: connection?.host ?? "",
    port: connection?.port ? String(connection.port) : "",
    database: connection?.database ?? "",
    username: connection?.username ?? "",
    password: "",
  });
  const [entry, setEntry] = useState<"fields" | "string">("fields");
  const [connectionString, setConnectionString] = useState("");
  const pasted = entry === "string" && type !== "sqlite";
  const hasPassword = Boolean(connection?.password);
  const testsSaved = Boolean(connection && hasPassword && !pasted && !values.password);

  const fields = () =>
    pasted
      ? { type, authentication, connectionString }
      : {
          type,
          authentication,
          ...Object.fromEntries(FIELDS.filter((f) => values[f].trim()).map((f) => [f, f === "port" ? Number(values[f]) : values[f]])),
        };
  const test = useMutation({
    // Editing with the password left empty, the stored password can only be used by testing
    // the saved connection (it never comes back to the browser): said next to the result.
    mutationFn: () =>
      unwrap(
        api.POST("/api/test-connection/database", {
          body: (testsSaved ? { connectionId: connection!.id } : { connection: fields() }) as never,
        }),
      ),
  });
  const save = useMutation({
    mutationFn: () => {
      if (!connection) return unwrap(api.POST("/api/connections", { body: { name, ...fields() } as never }));
      // Every field as the form shows it (cleared ones as null); the type cannot change; the
      // version this form was opened on, so a change made meanwhile is a 409, not overwritten.
      const { type: _type, ...changed } = fields();
      void _type;
      // A pasted string replaces the fields: none is sent beside it.
      const cleared = pasted ? {} : Object.fromEntries(FIELDS.filter((f) => f !== "password" && !values[f].trim()).map((f) => [f, null]));
      return unwrap(
        api.PATCH("/api/connections/{connection_id}", {
          params: { path: { connection_id: connection.id } },
          body: { name, ...cleared, ...changed, version: connection.version } as never,
        }),
      );
    },
    onSuccess: () => {
      queryClient.invalidateQueries({ queryKey: ["connections"] });
      onDone();
    },
  });
  // A test's 422 names `connection.port`, a save's `port`: both shown next to the field.
  const problems = {
    ...(test.error instanceof ApiError ? problemsByField(test.error.problems.map((p) => ({ ...p, field: p.field?.replace(/^connection\./, "") }))) : {}),
    ...(save.error instanceof ApiError ? problemsByField(save.error.problems) : {}),
  };
  const result = test.data as { success: boolean; message: string; kind?: string | null } | undefined;
  const visible = type === "sqlite" ? (["database"] as Field[]) : FIELDS.filter((f) => !(authentication === "windows" && (f === "username" || f === "password")));

  function submit(event: FormEvent) {
    event.preventDefault();
    save.mutate();
  }

  return (
    <form onSubmit={submit} aria-label={connection ? `Edit connection ${connection.name}` : "New connection"} className="mb-6 max-w-3xl rounded-lg border border-indigo-300 bg-white p-5">
      <h2 className="mb-3 text-lg font-semibold">{connection ? `Edit connection ${connection.name}` : "New connection"}</h2>
      <div className="grid grid-cols-2 gap-3">
        <div>
          <label htmlFor="conn-name" className="block text-sm font-medium">Name</label>
          <input id="conn-name" className={inputClass} value={name} onChange={(e) => setName(e.target.value)} />
          {problemsFor(problems, "name").map((m) => <p key={m} className="text-sm text-red-800">{m}</p>)}
        </div>
        <div>
          <label htmlFor="conn-type" className="block text-sm font-medium">Type</label>
          <select id="conn-type" className={inputClass} value={type} disabled={Boolean(connection)} onChange={(e) => setType(e.target.value as ConnectionType)}>
            {TYPES.map((value) => <option key={value}>{value}</option>)}
          </select>
        </div>
        {type === "sql-server" ? (
          <div>
            <label htmlFor="conn-auth" className="block text-sm font-medium">Authentication</label>
            <select id="conn-auth" className={inputClass} value={authentication} onChange={(e) => setAuthentication(e.target.value as Authentication)}>
              {AUTHENTICATIONS.map((value) => <option key={value}>{value}</option>)}
            </select>
            {problemsFor(problems, "authentication").map((m) => <p key={m} className="text-sm text-red-800">{m}</p>)}
          </div>
        ) : null}
        {type !== "sqlite" ? (
          <fieldset className="col-span-2 flex gap-4 text-sm">
            <legend className="sr-only">How to enter the connection</legend>
            <label className="flex items-center gap-1">
              <input type="radio" name="conn-entry" checked={!pasted} onChange={() => setEntry("fields")} /> Enter the fields
            </label>
            <label className="flex items-center gap-1">
              <input type="radio" name="conn-entry" checked={pasted} onChange={() => setEntry("string")} /> Paste a connection string
            </label>
          </fieldset>
        ) : null}
        {pasted ? (
          <div className="col-span-2">
            <label htmlFor="conn-string" className="block text-sm font-medium">Connection string</label>
            <textarea
              id="conn-string"
              className={`${inputClass} font-mono`}
              rows={2}
              spellCheck={false}
              autoComplete="off"
              value={connectionString}
              aria-describedby="conn-string-hint"
              onChange={(e) => setConnectionString(e.target.value)}
            />
            <p id="conn-string-hint" className="text-xs text-slate-700">
              ADO.NET (<code>Server=host,1433;Database=db;User Id=…;Password=…</code>), ODBC, libpq or a URL (<code>postgresql://user:pw@host:5432/db</code>). It is split into the fields; its password is stored like one, never shown.
            </p>
            {problemsFor(problems, "connectionString").map((m) => <p key={m} className="text-sm text-red-800">{m}</p>)}
          </div>
        ) : null}
        {(pasted ? [] : visible).map((field) => (
          <div key={field}>
            <label htmlFor={`conn-${field}`} className="block text-sm font-medium capitalize">{type === "sqlite" && field === "database" ? "Database file (in the server's sources folder)" : field}</label>
            <input
              id={`conn-${field}`}
              className={inputClass}
              type={field === "password" ? "password" : "text"}
              autoComplete={field === "password" ? "new-password" : "off"}
              inputMode={field === "port" ? "numeric" : undefined}
              value={values[field]}
              placeholder={field === "password" && hasPassword ? "unchanged (stored, never shown)" : undefined}
              aria-describedby={field === "password" && connection ? "conn-password-hint" : undefined}
              onChange={(e) => setValues((current) => ({ ...current, [field]: e.target.value }))}
            />
            {field === "password" && connection ? (
              <p id="conn-password-hint" className="text-xs text-slate-700">
                {hasPassword ? "A password is stored. Leave this empty to keep it; a new host or port needs it again." : "No password is stored."}
              </p>
            ) : null}
            {problemsFor(problems, field).map((m) => <p key={m} className="text-sm text-red-800">{m}</p>)}
          </div>
        ))}
      </div>
      {result ? (
        <p role="status" data-testid="test-result" className={`mt-3 rounded border p-2 text-sm ${result.success ? "border-green-300 bg-green-50 text-green-900" : "border-red-300 bg-red-50 text-red-900"}`}>
          {result.success ? "Connected: " : `Failed${result.kind ? ` (${result.kind})` : ""}: `}
          {result.message}
          {testsSaved ? <span className="block text-xs">(the saved connection was tested, with its stored password: save to test your changes)</span> : null}
        </p>
      ) : null}
      {test.isError && !(test.error instanceof ApiError && test.error.problems.length) ? <ErrorBox error={test.error} /> : null}
      {save.error instanceof ApiError && save.error.status === 409 && connection ? (
        <div role="alert" className="my-3 rounded border border-red-300 bg-red-50 p-3 text-sm text-red-900">
          This connection was changed by someone else since you opened it: cancel and open it again to see their change (the server said: {save.error.message}).
        </div>
      ) : save.isError && !(save.error instanceof ApiError && save.error.problems.length) ? (
        <ErrorBox error={save.error} />
      ) : null}
      <div className="mt-4 flex gap-2">
        <button type="button" className={secondaryButtonClass} onClick={onDone}>Cancel</button>
        <button type="button" className={secondaryButtonClass} onClick={() => test.mutate()} disabled={test.isPending}>
          {test.isPending ? "Testing…" : "Test connection"}
        </button>
        <button type="submit" className={buttonClass} disabled={save.isPending}>{save.isPending ? "Saving…" : "Save"}</button>
      </div>
    </form>
  );
}
