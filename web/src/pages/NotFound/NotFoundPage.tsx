import { Link } from 'react-router-dom';
import styles from './NotFoundPage.module.css';

export function NotFoundPage() {
  return (
    <section className={styles.page}>
      <h1 className={styles.title}>Page not found</h1>
      <p>
        There is nothing at this address. <Link to="/">Go to the chat</Link>.
      </p>
    </section>
  );
}
