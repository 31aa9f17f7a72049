import { lazy, Suspense } from 'react';
import { Route, Routes } from 'react-router-dom';
import { Layout } from './components/Layout/Layout';
import { ChatPage } from './pages/Chat/ChatPage';
import { ConversationsPage } from './pages/Conversations/ConversationsPage';
import { DeadLetterPage } from './pages/DeadLetters/DeadLetterPage';
import { DeadLettersPage } from './pages/DeadLetters/DeadLettersPage';
import { ImportsPage } from './pages/Imports/ImportsPage';
import { RegressPage } from './pages/Regress/RegressPage';
import { ReplayPage } from './pages/Replay/ReplayPage';
import { SignInPage } from './pages/SignIn/SignInPage';
import { InboxPage } from './pages/Inbox/InboxPage';
import { DeskConversationPage } from './pages/Inbox/DeskConversationPage';
import { SessionProvider } from './api/session';
import { NotFoundPage } from './pages/NotFound/NotFoundPage';

// The dashboard brings the chart library; customers on the chat should not download it.
const DashboardPage = lazy(() => import('./pages/Dashboard/DashboardPage').then((m) => ({ default: m.DashboardPage })));

export function App() {
  return (
    <SessionProvider>
      <Layout>
        <Routes>
          <Route path="/" element={<ChatPage />} />
          <Route path="/signin" element={<SignInPage />} />
          <Route path="/inbox" element={<InboxPage />} />
          <Route path="/inbox/:threadId" element={<DeskConversationPage />} />
          <Route path="/conversations" element={<ConversationsPage />} />
          <Route path="/conversations/:threadId" element={<ReplayPage />} />
          <Route
            path="/dashboard"
            element={
              <Suspense fallback={<p role="status">Loading…</p>}>
                <DashboardPage />
              </Suspense>
            }
          />
          <Route path="/dead-letters" element={<DeadLettersPage />} />
          <Route path="/dead-letters/:id" element={<DeadLetterPage />} />
          <Route path="/imports" element={<ImportsPage />} />
          <Route path="/imports/:id" element={<ImportsPage />} />
          <Route path="/regress" element={<RegressPage />} />
          <Route path="/regress/:id" element={<RegressPage />} />
          <Route path="*" element={<NotFoundPage />} />
        </Routes>
      </Layout>
    </SessionProvider>
  );
}
