import { describe, expect, it } from "vitest";
import { describeTrigger, emptyForm, formFromTrigger, settingsFromForm, webhookUrl } from "./triggers";

describe("trigger settings as a form and back", () => {
  it("a cron trigger read back gives the same settings to PATCH (the whole object)", () => {
    const settings = { expression: "*/5 * * * *", timezone: "Europe/Paris", misfire: "catch_up", maxCatchUp: 3, concurrency: "queue" };
    const form = formFromTrigger({ kind: "cron", name: "every 5", enabled: false, settings });
    expect(form.enabled).toBe(false);
    expect(form.name).toBe("every 5");
    expect(settingsFromForm(form)).toEqual(settings);
  });

  it("leaves maxCatchUp out unless the misfire policy is catch_up", () => {
    const form = { ...emptyForm("cron"), expression: " 0 6 * * * ", maxCatchUp: "7" };
    expect(settingsFromForm(form)).toEqual({ expression: "0 6 * * *", timezone: "UTC", misfire: "skip", concurrency: "skip" });
  });

  it("sends what is not a number as typed, so the API's 422 names it", () => {
    const form = { ...emptyForm("event"), settleSeconds: "ten" };
    expect(settingsFromForm(form).settleSeconds).toBe("ten");
    expect(settingsFromForm({ ...form, settleSeconds: "30" }).settleSeconds).toBe(30);
  });

  it("an event trigger defaults to queue and leaves jobId out when none is chosen", () => {
    const settings = settingsFromForm(emptyForm("event"));
    expect(settings.concurrency).toBe("queue");
    expect(settings).not.toHaveProperty("jobId");
    expect(settings.prefix).toBe("incoming/");
  });

  it("a dependency trigger keeps its upstream ids and the optional window", () => {
    const form = formFromTrigger({ kind: "dependency", name: null, enabled: true, settings: { upstream: ["a", "b"], mode: "any", status: "ended", concurrency: "skip" } });
    expect(settingsFromForm(form)).toEqual({ upstream: ["a", "b"], mode: "any", status: "ended", concurrency: "skip" });
    expect(settingsFromForm({ ...form, windowMinutes: "60" }).windowMinutes).toBe(60);
  });

  it("manual and webhook settings are what the API takes", () => {
    expect(settingsFromForm(emptyForm("manual"))).toEqual({});
    expect(settingsFromForm(emptyForm("webhook"))).toEqual({ concurrency: "skip" });
  });
});

describe("describeTrigger", () => {
  it("says what each kind does, naming upstream workflows", () => {
    expect(describeTrigger({ kind: "cron", settings: { expression: "0 6 * * *", timezone: "UTC" } })).toBe("cron 0 6 * * * (UTC)");
    expect(describeTrigger({ kind: "dependency", settings: { upstream: ["w1"], mode: "all", status: "succeeded" } }, () => "Ingest")).toBe("after all of Ingest succeeded");
    expect(describeTrigger({ kind: "event", settings: { prefix: "in/", pattern: "*.csv", recursive: true } })).toBe("a file *.csv arriving in in/ (and subfolders)");
  });

  it("a webhook's URL is the API's hooks route on the same origin", () => {
    expect(webhookUrl("http://127.0.0.1:8000/", "t1")).toBe("http://127.0.0.1:8000/api/hooks/t1");
  });
});
