import type { ReactNode } from 'react';
import type { PagedList } from '../../api/usePagedList';
import { ListFooter } from '../ListFooter/ListFooter';
import { RequestStatus } from '../RequestStatus/RequestStatus';
import { TableScroll, tableStyles as table } from './DataTable';

interface PagedTableProps<T> {
  list: PagedList<T>;
  /** The scroll region's name, e.g. "Dead letters list". */
  label: string;
  /** Said when the first page is empty. */
  empty: string;
  /** The header cells (`<th scope="col">`). */
  columns: ReactNode;
  row: (item: T) => ReactNode;
}

/** A paged operator list as a table: its request's status, the empty state, the rows, "Load more". */
export function PagedTable<T>({ list, label, empty, columns, row }: PagedTableProps<T>) {
  return (
    <>
      <RequestStatus request={list.request} onRetry={list.retry} />
      {list.loaded && list.items.length === 0 ? <p className={table.muted}>{empty}</p> : null}
      {list.items.length > 0 ? (
        <TableScroll label={label}>
          <table className={table.table}>
            <thead>
              <tr>{columns}</tr>
            </thead>
            <tbody>{list.items.map(row)}</tbody>
          </table>
        </TableScroll>
      ) : null}
      <ListFooter list={list} loading={list.request.loading} />
    </>
  );
}
