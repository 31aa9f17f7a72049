import { useCallback, useRef, useState } from 'react';
import { Link, useParams } from 'react-router-dom';
import {
  addNote,
  assignConversation,
  getConversation,
  getReplay,
  releaseConversation,
  resolveConversation,
  sendOperatorReply,
} from '../../api/client';
import { useDeskEvents, useDeskRefresh } from '../../api/deskEvents';
import { useSession } from '../../api/session';
import type { ReplayStep } from '../../api/types';
import { useOperatorRequest } from '../../api/useOperatorRequest';
import { useOperatorResource } from '../../api/useOperatorResource';
import { Button } from '../../components/Button/Button';
import { Composer } from '../../components/Composer/Composer';
import { pageStyles as frame } from '../../components/Page/Page';
import { RequestStatus } from '../../components/RequestStatus/RequestStatus';
import { newClientMsgId } from '../../lib/id';
import { CONVERSATION_STATUS_LABELS, labelOf } from '../../lib/labels';
import replayStyles from '../Replay/ReplayPage.module.css';
import { StepTimeline } from '../Replay/StepItem';
import styles from './DeskConversationPage.module.css';
import { deskState, eventStep, mergeSteps } from './deskState';
import { deskErrorText } from './deskText';

/** A reply on its way: sent again with the same id until the server has it. */
interface PendingReply {
  text: string;
  clientMsgId: string;
}

/** A composer's command: `send` settles `true` once the server has the text, `false` if refused. */
function useTextCommand(post: (text: string) => Promise<unknown>) {
  const request = useOperatorRequest();
  const send = (text: string) =>
    new Promise<boolean>((resolve) => {
      request.run(
        () => post(text),
        () => resolve(true),
        (caught) => {
          resolve(false);
          return deskErrorText(caught);
        },
      );
    });
  return { request, send };
}

/**
 * The desk's view of one conversation: everything that happened (the customer's messages, the
 * agents' steps, operators' replies and internal notes), who holds it, and what the signed-in
 * operator may do: Take over, Hand back, Resolve, reply (the holder only), add a note.
 *
 * Live: each desk event of this thread is added to the timeline at once, and the summary is read
 * again 200 ms after a burst.
 */
export function DeskConversationPage() {
  const { threadId = '' } = useParams<{ threadId: string }>();
  const session = useSession();
  const me = session.operator;

  const { data, reload, request } = useOperatorResource(
    useCallback(
      () =>
        Promise.all([getConversation(threadId), getReplay(threadId)]).then(([summary, replay]) => ({
          summary,
          steps: replay.steps,
        })),
      [threadId],
    ),
  );
  const [live, setLive] = useState<{ threadId: string; steps: ReplayStep[] }>({ threadId, steps: [] });
  const liveSteps = live.threadId === threadId ? live.steps : [];
  // Listening from the start when signed in, so nothing between the read and the first event is lost.
  const listening = session.signedIn || data !== null;

  useDeskEvents((desk) => {
    if (desk === null || desk.event.thread_id !== threadId) return;
    setLive((was) => ({ threadId, steps: [...(was.threadId === threadId ? was.steps : []), eventStep(desk)] }));
  }, listening);
  useDeskRefresh(reload, { enabled: listening, matters: (desk) => desk.event.thread_id === threadId });

  const steps = data ? mergeSteps(data.steps, liveSteps) : [];
  const state = deskState(steps);
  const holder = state.known ? state.holder : (data?.summary.assignee ?? null);
  const mine = holder !== null && me !== null && holder.id === me.id;
  const resolved = state.known ? state.resolved : data?.summary.status === 'resolved';

  // Each form has its own request, so a note sent while a reply is on its way does not drop it.
  const action = useOperatorRequest();
  const command = (request: () => Promise<unknown>) => action.run(request, () => {}, deskErrorText);
  const pending = useRef<PendingReply | null>(null);
  const reply = useTextCommand((text) => {
    // The same words again after a failure are the same message: same id, stored once.
    const next = pending.current?.text === text ? pending.current : { text, clientMsgId: newClientMsgId() };
    pending.current = next;
    return sendOperatorReply(threadId, next.text, next.clientMsgId).then((accepted) => {
      pending.current = null;
      return accepted;
    });
  });
  const note = useTextCommand((text) => addNote(threadId, text));

  const statusText = (): string => {
    if (!data) return '';
    if (resolved) return 'Resolved';
    if (holder) return mine ? 'You hold this conversation' : `Held by ${holder.name}`;
    if (state.last === 'released') return 'Handed back: the agents answer it';
    if (state.last === 'escalated' || data.summary.status === 'escalated') return 'Escalated: waiting for a person';
    return labelOf(CONVERSATION_STATUS_LABELS, data.summary.status);
  };

  return (
    <section className={frame.page} aria-labelledby="desk-title">
      <Link className={frame.back} to="/inbox">
        ← Inbox
      </Link>
      <div className={frame.header}>
        <div>
          <h1 className={frame.title} id="desk-title">
            Conversation
          </h1>
          <p className={replayStyles.threadId}>{threadId}</p>
          {data ? (
            <p className={styles.status} role="status">
              {statusText()}
            </p>
          ) : null}
        </div>
        {data ? (
          <div className={frame.actions} role="group" aria-label="Conversation actions">
            {!resolved && !mine ? (
              <Button variant="primary" disabled={action.loading} onClick={() => command(() => assignConversation(threadId))}>
                Take over
              </Button>
            ) : null}
            {holder && (mine || session.role === 'admin') ? (
              <Button disabled={action.loading} onClick={() => command(() => releaseConversation(threadId))}>
                Hand back
              </Button>
            ) : null}
            {!resolved ? (
              <Button disabled={action.loading} onClick={() => command(() => resolveConversation(threadId))}>
                Resolve
              </Button>
            ) : null}
            <Link to={`/conversations/${encodeURIComponent(threadId)}`}>Replay</Link>
          </div>
        ) : null}
      </div>

      <RequestStatus request={request} onRetry={reload} />
      <RequestStatus request={action} />
      <RequestStatus request={reply.request} />
      <RequestStatus request={note.request} />
      {request.loading && !data ? <p role="status">Loading…</p> : null}

      {data ? <StepTimeline steps={steps} /> : null}

      {data ? (
        <div className={styles.composers}>
          {mine && !resolved ? (
            <Composer label="Reply to the customer" submitLabel="Send reply" onSend={reply.send} />
          ) : (
            <p className={styles.hint}>
              {resolved
                ? 'This conversation is resolved.'
                : 'Only the operator who holds this conversation can reply. Take it over to answer the customer.'}
            </p>
          )}
          <Composer label="Internal note (only operators see it)" submitLabel="Add note" onSend={note.send} />
        </div>
      ) : null}
    </section>
  );
}
