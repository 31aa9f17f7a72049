import { useCallback, useEffect, useReducer, useRef, useState } from 'react';
import { encodeClientFrame, parseServerFrame } from '../../api/frames';
import type { ClientFrame } from '../../api/types';
import { newClientMsgId } from '../../lib/id';
import { backoffDelay, loadStoredChat, saveStoredChat, socketUrl } from './chatStorage';
import { chatReducer, initialChatState, unsentMessages, type ChatAction, type ChatState } from './chatReducer';

export type ConnectionStatus = 'connecting' | 'open' | 'closed';

export interface Connection {
  status: ConnectionStatus;
  /** Failed attempts since the last good session; 0 on the first connect. */
  attempt: number;
  /** When closed and a retry is scheduled: milliseconds until it. */
  retryInMs: number | null;
}

const SOCKET_CONNECTING = 0;
const SOCKET_OPEN = 1;
const PING_EVERY_MS = 25_000;

/**
 * The chat's WebSocket: connects (resuming the stored thread), feeds every frame to
 * `chatReducer`, resends unacknowledged messages after each (re)connect, and reconnects with
 * exponential back-off (capped at 10 s) from the last event seen.
 */
export function useChatSocket() {
  const [state, dispatch] = useReducer(chatReducer, undefined, () => {
    const stored = loadStoredChat();
    return initialChatState(stored ? { threadId: stored.threadId, token: stored.token } : null);
  });
  const [connection, setConnection] = useState<Connection>({ status: 'connecting', attempt: 0, retryInMs: null });

  // The reducer's latest result for the socket callbacks, which must not wait for a render
  // (an error frame and the close after it can arrive before React renders in between).
  const stateRef = useRef<ChatState>(state);
  const apply = (action: ChatAction) => {
    stateRef.current = chatReducer(stateRef.current, action);
    dispatch(action);
  };
  const socketRef = useRef<WebSocket | null>(null);
  const sessionReady = useRef(false);
  const attemptRef = useRef(0);
  const retryTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const pingTimer = useRef<ReturnType<typeof setInterval> | null>(null);
  const connectRef = useRef<() => void>(() => {});

  const clearTimers = () => {
    if (retryTimer.current !== null) clearTimeout(retryTimer.current);
    if (pingTimer.current !== null) clearInterval(pingTimer.current);
    retryTimer.current = null;
    pingTimer.current = null;
  };

  const sendFrame = (frame: ClientFrame): boolean => {
    const socket = socketRef.current;
    if (!socket || socket.readyState !== SOCKET_OPEN || !sessionReady.current) return false;
    socket.send(encodeClientFrame(frame));
    return true;
  };

  /** Closes the current socket without it counting as a drop (no reconnect is scheduled). */
  const detach = () => {
    clearTimers();
    const socket = socketRef.current;
    socketRef.current = null;
    sessionReady.current = false;
    if (socket?.readyState === SOCKET_CONNECTING) {
      // Closing a socket still connecting makes the browser log an error ("closed before the
      // connection is established"), e.g. on every StrictMode remount: let it open, then close it.
      socket.onopen = () => socket.close(1000);
    } else if (socket?.readyState === SOCKET_OPEN) {
      socket.close(1000);
    }
  };

  const connect = useCallback(() => {
    detach();
    const current = stateRef.current;
    const resume =
      current.threadId && current.token
        ? { threadId: current.threadId, token: current.token, afterSeq: current.lastSeq }
        : null;
    const socket = new WebSocket(socketUrl(window.location, resume));
    socketRef.current = socket;
    setConnection({ status: 'connecting', attempt: attemptRef.current, retryInMs: null });

    socket.onmessage = (message: MessageEvent) => {
      if (socketRef.current !== socket || typeof message.data !== 'string') return;
      const frame = parseServerFrame(message.data);
      if (!frame) return;
      if (frame.type === 'session') {
        sessionReady.current = true;
        attemptRef.current = 0;
        setConnection({ status: 'open', attempt: 0, retryInMs: null });
        pingTimer.current = setInterval(() => sendFrame({ type: 'ping' }), PING_EVERY_MS);
      }
      apply({ type: 'frame', frame });
      if (frame.type === 'session') {
        // Same client_msg_id again: the server stores each message at most once.
        for (const item of unsentMessages(stateRef.current)) {
          if (item.clientMsgId) sendFrame({ type: 'message', content: item.content, client_msg_id: item.clientMsgId });
        }
      }
    };

    socket.onclose = () => {
      if (socketRef.current !== socket) return;
      socketRef.current = null;
      sessionReady.current = false;
      clearTimers();
      if (stateRef.current.resumeRefused) {
        setConnection({ status: 'closed', attempt: attemptRef.current, retryInMs: null });
        return;
      }
      const delay = backoffDelay(attemptRef.current);
      attemptRef.current += 1;
      setConnection({ status: 'closed', attempt: attemptRef.current, retryInMs: delay });
      retryTimer.current = setTimeout(() => connectRef.current(), delay);
    };
  }, []);
  connectRef.current = connect;

  useEffect(() => {
    connect();
    const onOnline = () => {
      if (!socketRef.current && !stateRef.current.resumeRefused) connectRef.current();
    };
    window.addEventListener('online', onOnline);
    return () => {
      window.removeEventListener('online', onOnline);
      detach();
    };
  }, [connect]);

  // Keep the stored thread in step with what the server said.
  useEffect(() => {
    if (state.threadId && state.token && !state.resumeRefused) {
      saveStoredChat({ threadId: state.threadId, token: state.token, lastSeq: state.lastSeq });
    }
  }, [state.threadId, state.token, state.lastSeq, state.resumeRefused]);

  const send = useCallback((content: string) => {
    const clientMsgId = newClientMsgId();
    apply({ type: 'typed', clientMsgId, content });
    // If the socket is down the message waits as `sending` and goes out after the next session.
    sendFrame({ type: 'message', content, client_msg_id: clientMsgId });
  }, []);

  const retry = useCallback((clientMsgId: string) => {
    const item = stateRef.current.items.find((i) => i.type === 'user' && i.clientMsgId === clientMsgId);
    if (!item || item.type !== 'user') return;
    apply({ type: 'retry', clientMsgId });
    sendFrame({ type: 'message', content: item.content, client_msg_id: clientMsgId });
  }, []);

  const reconnectNow = useCallback(() => {
    attemptRef.current = 0;
    connectRef.current();
  }, []);

  const newConversation = useCallback(() => {
    detach();
    saveStoredChat(null);
    apply({ type: 'newConversation' });
    attemptRef.current = 0;
    connectRef.current();
  }, []);

  const dismissNotice = useCallback(() => apply({ type: 'dismissNotice' }), []);

  return { state, connection, send, retry, reconnectNow, newConversation, dismissNotice };
}
