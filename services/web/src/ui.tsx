import type { ReactNode } from "react";
import { ApiError } from "./api/client";

const STATUS_STYLES: Record<string, string> = {
  succeeded: "bg-green-100 text-green-900 border-green-300",
  running: "bg-blue-100 text-blue-900 border-blue-300",
  queued: "bg-slate-100 text-slate-800 border-slate-300",
  cancelling: "bg-amber-100 text-amber-900 border-amber-300",
  cancelled: "bg-slate-200 text-slate-800 border-slate-400",
  failed: "bg-red-100 text-red-900 border-red-300",
  aborted: "bg-red-100 text-red-900 border-red-300",
  active: "bg-green-100 text-green-900 border-green-300",
  scheduled: "bg-indigo-100 text-indigo-900 border-indigo-300",
  paused: "bg-amber-100 text-amber-900 border-amber-300",
  draft: "bg-slate-100 text-slate-800 border-slate-300",
};

export function StatusBadge({ status, label }: { status: string | null | undefined; label?: string }) {
  const value = status ?? "never run";
  return (
    <span
      className={`inline-block rounded border px-2 py-0.5 text-xs font-medium ${STATUS_STYLES[value] ?? "bg-slate-100 text-slate-800 border-slate-300"}`}
      data-status={value}
      aria-label={label ? `${label}: ${value}` : undefined}
    >
      {value}
    </span>
  );
}

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const message =
    error instanceof ApiError
      ? `${error.message} (HTTP ${error.status})`
      : error instanceof Error
        ? error.message
        : String(error);
  return (
    <div role="alert" className="my-3 rounded border border-red-300 bg-red-50 p-3 text-sm text-red-900">
      {message}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p role="status" className="my-4 text-sm text-slate-700">
      Loading {what}…
    </p>
  );
}

export function PageTitle({ children, actions }: { children: ReactNode; actions?: ReactNode }) {
  return (
    <div className="mb-4 flex flex-wrap items-center justify-between gap-3">
      <h1 className="text-2xl font-semibold">{children}</h1>
      {actions ? <div className="flex gap-2">{actions}</div> : null}
    </div>
  );
}

export const buttonClass =
  "rounded bg-indigo-700 px-3 py-1.5 text-sm font-medium text-white hover:bg-indigo-800 disabled:opacity-50 focus:outline-none focus:ring-2 focus:ring-indigo-500 focus:ring-offset-1";
export const secondaryButtonClass =
  "rounded border border-slate-400 bg-white px-3 py-1.5 text-sm font-medium text-slate-900 hover:bg-slate-100 disabled:opacity-50 focus:outline-none focus:ring-2 focus:ring-indigo-500 focus:ring-offset-1";
export const inputClass =
  "w-full rounded border border-slate-400 px-2 py-1.5 text-sm focus:outline-none focus:ring-2 focus:ring-indigo-500";

export function formatDate(value: string | null | undefined): string {
  if (!value) return "—";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : date.toLocaleString();
}

export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${ms} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds % 60)} s`;
}

export function formatNumber(value: number | null | undefined): string {
  return value === null || value === undefined ? "—" : value.toLocaleString("en-US");
}
