import { useState } from 'react';
import { ApiError, countRedrivable, redriveMatching } from '../../api/client';
import type { BulkRedriveResult, DeadLetterFilter } from '../../api/types';
import { useOperatorRequest } from '../../api/useOperatorRequest';
import { ConfirmDialog } from '../../components/ConfirmDialog/ConfirmDialog';

function plural(n: number): string {
  return `${n} dead letter${n === 1 ? '' : 's'}`;
}

function summary(result: BulkRedriveResult): string {
  const done = `Redrove ${plural(result.redriven)}.`;
  if (result.failed.length === 0) return done;
  const failed = result.failed.map((f) => `#${f.id} (${f.code.replace(/_/g, ' ')})`).join(', ');
  return `${done} ${result.failed.length} could not be redriven: ${failed}.`;
}

/**
 * "Redrive all matching": counts what the filter matches (the API's dry run), asks with that
 * number, then redrives exactly that many (`expected_count`), so nobody redrives more than they
 * were shown. `onDone` gets a sentence saying what happened.
 */
export function useBulkRedrive(filter: DeadLetterFilter, onDone: (message: string) => void) {
  const [count, setCount] = useState<number | null>(null);
  const request = useOperatorRequest();

  const start = () =>
    request.run(
      () => countRedrivable(filter),
      (answer) => {
        if (answer.would_redrive > 0) setCount(answer.would_redrive);
        else onDone('No dead letters match these filters: nothing to redrive.');
      },
    );

  const redrive = (expected: number) =>
    request.run(
      () =>
        redriveMatching(filter, expected).catch((caught: unknown) => {
          if (caught instanceof ApiError && caught.code === 'count_changed') {
            throw new ApiError(
              caught.status,
              caught.code,
              'Nothing was redriven: the number of matching dead letters changed since they were counted. Count again.',
            );
          }
          throw caught;
        }),
      (result) => onDone(summary(result)),
    );

  const dialog =
    count !== null ? (
      <ConfirmDialog
        title={`Redrive ${plural(count)}?`}
        confirmLabel={`Redrive ${count}`}
        onCancel={() => setCount(null)}
        onConfirm={() => {
          setCount(null);
          redrive(count);
        }}
      >
        <p>
          Every dead letter matching the filters now ({plural(count)}) goes back to the workers, oldest first. If
          the number changes before you confirm, nothing is redriven.
        </p>
      </ConfirmDialog>
    ) : null;

  return { start, dialog, request };
}
