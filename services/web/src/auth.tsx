import { useQuery } from "@tanstack/react-query";
import { api, getToken, unwrap } from "./api/client";

export type Role = "admin" | "editor" | "auditor" | "viewer";

export interface Me {
  tokenId: string;
  name: string;
  role: Role;
}

/** Who the stored token stands for (GET /api/tokens/me); undefined while unknown. */
export function useMe() {
  return useQuery({
    queryKey: ["me", getToken()],
    queryFn: () => unwrap(api.GET("/api/tokens/me")) as Promise<Me>,
    enabled: Boolean(getToken()),
    staleTime: 60_000,
    retry: false,
  });
}

/** What a role is offered: the API still decides every request. */
export function canEdit(role: Role | undefined): boolean {
  return role === "editor" || role === "admin";
}

export function canReadAudit(role: Role | undefined): boolean {
  return role === "editor" || role === "admin" || role === "auditor";
}
