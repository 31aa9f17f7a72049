import { useNavigate, useParams } from 'react-router-dom';
import { pageStyles as frame } from '../../components/Page/Page';
import { ImportForm } from './ImportForm';
import { ImportReview } from './ImportReview';

/**
 * `/imports`: import an OpenAPI document; `/imports/:id`: the same form above that import, polled
 * until it is ready or failed, then its operations to review and publish.
 */
export function ImportsPage() {
  const { id } = useParams();
  const navigate = useNavigate();

  return (
    <section className={frame.page} aria-labelledby="imports-title">
      <div className={frame.header}>
        <h1 className={frame.title} id="imports-title">
          OpenAPI imports
        </h1>
      </div>
      <p className={frame.intro}>
        Import an OpenAPI 3.0 or 3.1 document, review how each operation is classified and which agent gets it, then
        publish the enabled operations as the agents&apos; tools.
      </p>
      <ImportForm onStarted={(accepted) => navigate(`/imports/${encodeURIComponent(accepted.id)}`)} />
      {id ? <ImportReview key={id} id={id} /> : null}
    </section>
  );
}
