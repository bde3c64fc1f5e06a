// A real `flowforge serve` for the E2E tests: a free port, a fresh data dir with the BFSI
// demo's sources, the built bundle (dist/) at `/`. No mock of the API anywhere.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const WEB = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const ROOT = resolve(WEB, "../..");
export const STATE_FILE = join(WEB, "test-results", ".e2e-server.json");
const PYTHON = process.env.FLOWFORGE_PYTHON || join(ROOT, ".venv/bin/python");
const FLOWFORGE = process.env.FLOWFORGE_BIN || join(ROOT, ".venv/bin/flowforge");

export interface ServerState {
  baseURL: string;
  pid: number;
  dataDir: string;
  adminToken: string;
  crmCsv: string;
  sqlite: string;
}

async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => done(port));
    });
  });
}

async function waitHealthy(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`flowforge serve exited (${child.exitCode}):\n${log()}`);
    try {
      const answer = await fetch(`${url}/healthz`);
      if (answer.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((wait) => setTimeout(wait, 250));
  }
  throw new Error(`flowforge serve did not answer /healthz within 60 s:\n${log()}`);
}

export async function startServer(): Promise<ServerState> {
  const dataDir = mkdtempSync(join(tmpdir(), "flowforge-e2e-"));
  const sources = JSON.parse(
    execFileSync(PYTHON, [join(WEB, "e2e/demo_sources.py"), dataDir], { cwd: ROOT }).toString(),
  );
  const port = await freePort();
  const adminToken = `ff_e2e_admin_${Math.random().toString(36).slice(2)}${"x".repeat(32)}`;
  let output = "";
  const child = spawn(FLOWFORGE, ["serve", "--host", "127.0.0.1", "--port", String(port)], {
    cwd: ROOT,
    env: {
      ...process.env,
      FLOWFORGE_DATA_DIR: dataDir,
      FLOWFORGE_ADMIN_TOKEN: adminToken,
      FLOWFORGE_WEB_DIST: join(WEB, "dist"),
      FLOWFORGE_DATABASE_URL: "",
      FLOWFORGE_BROKER_URL: "",
      FLOWFORGE_STORAGE_URL: "",
    },
    stdio: ["ignore", "pipe", "pipe"],
    detached: false,
  });
  child.stdout?.on("data", (chunk) => (output += chunk));
  child.stderr?.on("data", (chunk) => (output += chunk));
  const baseURL = `http://127.0.0.1:${port}`;
  await waitHealthy(baseURL, child, () => output);
  child.stdout?.removeAllListeners("data");
  child.stderr?.removeAllListeners("data");
  child.stdout?.resume();
  child.stderr?.resume();
  child.unref();
  const state: ServerState = { baseURL, pid: child.pid!, dataDir, adminToken, ...sources };
  writeFileSync(STATE_FILE, JSON.stringify(state));
  return state;
}

export function serverState(): ServerState {
  return JSON.parse(readFileSync(STATE_FILE, "utf8"));
}

export function stopServer(): void {
  let state: ServerState;
  try {
    state = serverState();
  } catch {
    return;
  }
  try {
    process.kill(state.pid, "SIGTERM");
  } catch {
    // already gone
  }
  rmSync(state.dataDir, { recursive: true, force: true });
  rmSync(STATE_FILE, { force: true });
}
