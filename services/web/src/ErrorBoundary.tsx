import { Component, type ErrorInfo, type ReactNode } from "react";

/** A page that fails to render says so, in words, instead of going blank. */
export class ErrorBoundary extends Component<{ children: ReactNode; resetKey?: string }, { error: Error | null }> {
  state: { error: Error | null } = { error: null };

  static getDerivedStateFromError(error: Error) {
    return { error };
  }

  componentDidCatch(error: Error, info: ErrorInfo) {
    console.error("the page failed to render", error, info.componentStack);
  }

  componentDidUpdate(previous: { resetKey?: string }) {
    if (previous.resetKey !== this.props.resetKey && this.state.error) this.setState({ error: null });
  }

  render() {
    if (this.state.error) {
      return (
        <div role="alert" className="rounded border border-red-300 bg-red-50 p-4 text-red-900">
          <p className="font-semibold">This page failed to show: {this.state.error.message}</p>
          <p className="mt-1 text-sm">Reload the page; if it happens again, the browser console has the details.</p>
        </div>
      );
    }
    return this.props.children;
  }
}
