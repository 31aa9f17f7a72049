import { useCallback, useEffect, useState, type ReactNode } from 'react';
import { NavLink, useLocation, useNavigate } from 'react-router-dom';
import { ApiError, getInbox } from '../../api/client';
import { useDeskRefresh } from '../../api/deskEvents';
import { useSession } from '../../api/session';
import { Button } from '../Button/Button';
import styles from './Layout.module.css';

const linkClass = ({ isActive }: { isActive: boolean }) => (isActive ? `${styles.link} ${styles.active}` : styles.link);

/** How many conversations wait for a person, kept live while someone is signed in. */
function useUnassignedCount(): number | null {
  const { signedIn, expired } = useSession();
  const [count, setCount] = useState<number | null>(null);
  const load = useCallback(() => {
    getInbox('unassigned').then(
      (inbox) => setCount(inbox.counts.unassigned),
      (error: unknown) => {
        setCount(null);
        if (error instanceof ApiError && error.status === 401) expired();
      },
    );
  }, [expired]);
  useEffect(() => {
    if (signedIn) load();
  }, [signedIn, load]);
  useDeskRefresh(load, { enabled: signedIn });
  return signedIn ? count : null;
}

function Account() {
  const { operator, viaToken, signedIn, signOut } = useSession();
  const navigate = useNavigate();
  const { pathname, search } = useLocation();
  if (!signedIn) {
    // Back to this operator page after signing in; from the chat (or the sign-in), to the inbox.
    const here = pathname === '/' || pathname === '/signin' ? '' : `?next=${encodeURIComponent(pathname + search)}`;
    return (
      <NavLink to={`/signin${here}`} className={linkClass}>
        Sign in
      </NavLink>
    );
  }
  return (
    <>
      <span className={styles.who}>{operator ? operator.name : viaToken ? 'API token' : ''}</span>
      <Button size="small" onClick={() => void signOut().then(() => navigate('/signin'))}>
        Sign out
      </Button>
    </>
  );
}

export function Layout({ children }: { children: ReactNode }) {
  const { role } = useSession();
  const unassigned = useUnassignedCount();
  // Agents are not allowed dead letters, imports and regress: no links that can only answer 403.
  const admin = role !== 'agent';
  return (
    <div className={styles.shell}>
      <a className={styles.skip} href="#main">
        Skip to content
      </a>
      <header className={styles.nav}>
        <span className={styles.brand}>Smart Support</span>
        <nav aria-label="Main" className={styles.mainNav}>
          <ul className={styles.links}>
            <li>
              <NavLink to="/" end className={linkClass}>
                Chat
              </NavLink>
            </li>
            <li>
              <NavLink to="/inbox" className={linkClass}>
                Inbox
                {unassigned !== null && unassigned > 0 ? (
                  <>
                    <span className={styles.badge} aria-hidden="true">
                      {unassigned}
                    </span>
                    <span className="visually-hidden">, {unassigned} unassigned</span>
                  </>
                ) : null}
              </NavLink>
            </li>
            <li>
              <NavLink to="/conversations" className={linkClass}>
                Conversations
              </NavLink>
            </li>
            <li>
              <NavLink to="/dashboard" className={linkClass}>
                Dashboard
              </NavLink>
            </li>
            {admin ? (
              <>
                <li>
                  <NavLink to="/dead-letters" className={linkClass}>
                    Dead letters
                  </NavLink>
                </li>
                <li>
                  <NavLink to="/imports" className={linkClass}>
                    Imports
                  </NavLink>
                </li>
                <li>
                  <NavLink to="/regress" className={linkClass}>
                    Regress
                  </NavLink>
                </li>
              </>
            ) : null}
          </ul>
        </nav>
        <div className={styles.account}>
          <Account />
        </div>
      </header>
      <main className={styles.main} id="main" tabIndex={-1}>{children}</main>
    </div>
  );
}
