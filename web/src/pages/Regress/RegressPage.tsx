import { useNavigate, useParams } from 'react-router-dom';
import { pageStyles as frame } from '../../components/Page/Page';
import { RegressForm } from './RegressForm';
import { RegressRunView } from './RegressRunView';

/**
 * `/regress`: try a changed agents config on the recorded conversations; `/regress/:id`: the same
 * form above that run, polled while it runs, then its summary and the changed turns, each opened
 * (`?turn=<turn id>`) with the recorded and the new turn side by side. Admins only.
 */
export function RegressPage() {
  const { id } = useParams();
  const navigate = useNavigate();

  return (
    <section className={frame.page} aria-labelledby="regress-title">
      <div className={frame.header}>
        <h1 className={frame.title} id="regress-title">
          Regress
        </h1>
      </div>
      <p className={frame.intro}>
        Before a changed agents config goes live, run it on the conversations already recorded: every turn is answered
        again with it, offline (no tool is called, nothing is stored in the conversations), and the turns it would answer
        differently are listed.
      </p>
      <RegressForm onStarted={(accepted) => navigate(`/regress/${encodeURIComponent(accepted.id)}`)} />
      {id ? <RegressRunView key={id} id={id} /> : null}
    </section>
  );
}
