import type { OperatorRequest } from '../../api/useOperatorRequest';
import { Button } from '../Button/Button';
import { Notice } from '../Notice/Notice';
import { SignInForm } from '../SignInForm/SignInForm';

interface RequestStatusProps {
  /** The page's operator request state. */
  request: OperatorRequest;
  /** Runs the failed request again. Without it the error has a Dismiss button instead (for an
   *  action, which should not be repeated without asking again). */
  onRetry?: () => void;
}

/** What every operator page shows about its request: the sign-in, or the error with a retry. */
export function RequestStatus({ request, onRetry }: RequestStatusProps) {
  return (
    <>
      {request.needsToken ? (
        <SignInForm
          tokenRejected={request.tokenRejected}
          onSignedIn={request.retryAfterSignIn}
          onCancel={request.cancelToken}
        />
      ) : null}
      {request.error ? (
        <Notice
          tone="error"
          actions={
            onRetry ? (
              <Button size="small" onClick={onRetry}>
                Try again
              </Button>
            ) : (
              <Button size="small" onClick={request.dismissError}>
                Dismiss
              </Button>
            )
          }
        >
          {request.error}
        </Notice>
      ) : null}
    </>
  );
}
