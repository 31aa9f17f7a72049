import type { ReactNode } from 'react';
import { NavLink } from 'react-router-dom';
import styles from './Layout.module.css';

const linkClass = ({ isActive }: { isActive: boolean }) => (isActive ? `${styles.link} ${styles.active}` : styles.link);

export function Layout({ children }: { children: ReactNode }) {
  return (
    <div className={styles.shell}>
      <a className={styles.skip} href="#main">
        Skip to content
      </a>
      <header className={styles.nav}>
        <span className={styles.brand}>Smart Support</span>
        <nav aria-label="Main">
          <ul className={styles.links}>
            <li>
              <NavLink to="/" end className={linkClass}>
                Chat
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
          </ul>
        </nav>
      </header>
      <main className={styles.main} id="main" tabIndex={-1}>{children}</main>
    </div>
  );
}
