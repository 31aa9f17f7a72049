import { Link, useNavigate, useSearchParams } from 'react-router-dom';
import { useSession } from '../../api/session';
import { Button } from '../../components/Button/Button';
import { pageStyles as frame } from '../../components/Page/Page';
import { SignInForm } from '../../components/SignInForm/SignInForm';

/** Only a path of this app: `?next=https://elsewhere` must not send a signed-in person away. */
function safeNext(next: string | null): string {
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/inbox';
}

export function SignInPage() {
  const session = useSession();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const next = safeNext(params.get('next'));

  return (
    <section className={frame.page} aria-labelledby="signin-title">
      <h1 className={frame.title} id="signin-title">
        Sign in to the support desk
      </h1>
      {session.signedIn ? (
        <div className={frame.actions}>
          <p role="status">
            Signed in as{' '}
            {session.operator ? `${session.operator.name} (${session.operator.role})` : 'the holder of the API token'}.
          </p>
          <Link to={next}>Continue</Link>
          <Button size="small" onClick={() => void session.signOut()}>
            Sign out
          </Button>
        </div>
      ) : (
        <SignInForm onSignedIn={() => navigate(next, { replace: true })} />
      )}
    </section>
  );
}
