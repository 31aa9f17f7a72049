import type { useOperatorRequest } from '../../api/useOperatorRequest';
import { Button } from '../Button/Button';
import { Notice } from '../Notice/Notice';
import { TokenPrompt } from '../TokenPrompt/TokenPrompt';

interface RequestStatusProps {
  /** The page's operator request state. */
  request: ReturnType<typeof useOperatorRequest>;
  /** Runs the failed request again. */
  onRetry: () => void;
}

/** What every operator page shows about its request: the token prompt, or the error with a retry. */
export function RequestStatus({ request, onRetry }: RequestStatusProps) {
  return (
    <>
      {request.needsToken ? (
        <TokenPrompt
          rejected={request.tokenRejected}
          busy={request.loading}
          onSubmit={request.submitToken}
          onCancel={request.cancelToken}
        />
      ) : null}
      {request.error ? (
        <Notice
          tone="error"
          actions={
            <Button size="small" onClick={onRetry}>
              Try again
            </Button>
          }
        >
          {request.error}
        </Notice>
      ) : null}
    </>
  );
}
