// Small pieces every page uses, so that each state reads the same
// everywhere: a failure, a load in progress, an empty result, a secret
// shown once.
import type { ReactNode } from "react";

/** A failure as an alert, or nothing. */
export function Problem({ message, children }: { message: string | null | undefined; children?: ReactNode }) {
  if (!message) return null;
  return (
    <p className="error" role="alert">
      {message} {children}
    </p>
  );
}

/** What a page shows for its data: the failure, the load, the empty state,
 * or the content. */
export function Loaded<T>(props: {
  data: T | undefined | null;
  error: string | null | undefined;
  loading: string;
  empty?: (data: T) => string | null;
  children: (data: T) => ReactNode;
}) {
  if (props.error) return <Problem message={props.error} />;
  if (props.data === undefined || props.data === null)
    return (
      <p className="state" role="status">
        {props.loading}
      </p>
    );
  const empty = props.empty?.(props.data);
  if (empty) return <p className="state">{empty}</p>;
  return <>{props.children(props.data)}</>;
}

/** A secret the server shows only once (an API key, a signing secret). */
export function ShownOnce(props: { note: string; value: string | null; testId: string; onDone: () => void }) {
  if (!props.value) return null;
  return (
    <div className="secret" role="status">
      <p>{props.note}</p>
      <code data-testid={props.testId}>{props.value}</code>
      <button type="button" onClick={props.onDone}>
        Done
      </button>
    </div>
  );
}
