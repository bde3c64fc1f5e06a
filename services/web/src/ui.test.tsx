import { describe, expect, it } from "vitest";
import { render, screen } from "@testing-library/react";
import { ApiError } from "./api/client";
import { ErrorBox, formatDuration, StatusBadge } from "./ui";

describe("ErrorBox", () => {
  it("shows the API's own words and the HTTP status, as an alert", () => {
    render(<ErrorBox error={new ApiError(409, "workflow is paused: resume it or run with force")} />);
    expect(screen.getByRole("alert")).toHaveTextContent("workflow is paused: resume it or run with force (HTTP 409)");
  });

  it("shows nothing without an error", () => {
    const { container } = render(<ErrorBox error={null} />);
    expect(container).toBeEmptyDOMElement();
  });
});

describe("StatusBadge", () => {
  it("names the status, and 'never run' when there is none", () => {
    render(<><StatusBadge status="succeeded" label="Ingest" /><StatusBadge status={null} /></>);
    expect(screen.getByLabelText("Ingest: succeeded")).toHaveAttribute("data-status", "succeeded");
    expect(screen.getByText("never run")).toBeInTheDocument();
  });
});

describe("formatDuration", () => {
  it("reads as a person would say it", () => {
    expect(formatDuration(null)).toBe("—");
    expect(formatDuration(450)).toBe("450 ms");
    expect(formatDuration(6_600)).toBe("6.6 s");
    expect(formatDuration(125_000)).toBe("2 min 5 s");
  });
});
