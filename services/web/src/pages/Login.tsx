import { useState, type FormEvent } from "react";
import { useNavigate, useSearchParams } from "react-router-dom";
import { useQueryClient } from "@tanstack/react-query";
import { ApiError, api, setToken, unwrap } from "../api/client";
import { buttonClass, ErrorBox, inputClass } from "../ui";

export default function Login() {
  const [token, setValue] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const queryClient = useQueryClient();

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setToken(token.trim());
    try {
      await unwrap(api.GET("/api/tokens/me"));
      queryClient.clear();
      const next = params.get("next");
      navigate(next && next.startsWith("/") && !next.startsWith("//") ? next : "/workflows");
    } catch (caught) {
      setToken(null);
      setError(
        caught instanceof ApiError && caught.status === 401
          ? new Error(`This token was refused: ${caught.message}`)
          : caught,
      );
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="mx-auto mt-24 max-w-md rounded-lg border border-slate-300 bg-white p-8 shadow-sm">
      <h1 className="mb-2 text-2xl font-semibold">Sign in to FlowForge</h1>
      <p className="mb-6 text-sm text-slate-700">
        Paste an API token. A local server keeps its admin token in <code>.flowforge/admin-token</code>;
        an admin creates tokens for people with <code>POST /api/tokens</code>.
      </p>
      <form onSubmit={submit}>
        <label htmlFor="token" className="mb-1 block text-sm font-medium">
          API token
        </label>
        <input
          id="token"
          type="password"
          autoComplete="off"
          className={inputClass}
          value={token}
          onChange={(event) => setValue(event.target.value)}
          required
        />
        <ErrorBox error={error} />
        <button type="submit" className={`${buttonClass} mt-4 w-full`} disabled={busy || !token.trim()}>
          {busy ? "Checking…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
