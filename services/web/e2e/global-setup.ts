import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { startServer, STATE_FILE, stopServer } from "./server";

export default async function globalSetup() {
  mkdirSync(dirname(STATE_FILE), { recursive: true });
  await startServer();
  return () => stopServer();
}
