import { Button } from '../Button/Button';
import styles from './ListFooter.module.css';

interface ListFooterProps {
  list: { items: unknown[]; nextCursor: string | null; loaded: boolean; loadMore: () => void };
  loading: boolean;
}

/** Under a paged list: "Load more" while there is a next page, a loading line, or the end. */
export function ListFooter({ list, loading }: ListFooterProps) {
  return (
    <div className={styles.footer}>
      {list.nextCursor ? (
        <Button onClick={list.loadMore} disabled={loading}>
          Load more
        </Button>
      ) : null}
      {loading ? <span role="status">Loading…</span> : null}
      {list.loaded && list.items.length > 0 && !list.nextCursor ? <span>That is all of them.</span> : null}
    </div>
  );
}
