import { Route, Routes } from 'react-router-dom';
import { Layout } from './components/Layout/Layout';
import { ChatPage } from './pages/Chat/ChatPage';
import { ConversationsPage } from './pages/Conversations/ConversationsPage';
import { ReplayPage } from './pages/Replay/ReplayPage';
import { NotFoundPage } from './pages/NotFound/NotFoundPage';

export function App() {
  return (
    <Layout>
      <Routes>
        <Route path="/" element={<ChatPage />} />
        <Route path="/conversations" element={<ConversationsPage />} />
        <Route path="/conversations/:threadId" element={<ReplayPage />} />
        <Route path="*" element={<NotFoundPage />} />
      </Routes>
    </Layout>
  );
}
