//! A certificate authority of the test's own and a server certificate it signed, for TLS
//! tests, made with the `openssl` command line tool in a temporary directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::nats::ServerTls;

/// A fresh certificate authority (`ca.pem`) and a certificate it signed for `127.0.0.1` and
/// `localhost` (`server.pem`, key `server-key.pem`), valid for a day. Dropping it removes the
/// files.
#[derive(Debug)]
pub struct TestCa {
    dir: TempDir,
}

impl TestCa {
    /// Makes the authority and the server certificate.
    ///
    /// # Panics
    ///
    /// If `openssl` is not on `PATH` or fails.
    pub fn new() -> TestCa {
        let dir = tempfile::Builder::new()
            .prefix("testkit-ca-")
            .tempdir()
            .expect("create a temporary directory for the test CA");
        let at = |name: &str| dir.path().join(name);
        openssl(
            dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=smart-support test CA",
                "-keyout",
                "ca-key.pem",
                "-out",
                "ca.pem",
            ],
        );
        openssl(
            dir.path(),
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "server-key.pem",
                "-out",
                "server.csr",
            ],
        );
        std::fs::write(
            at("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write the certificate's extensions");
        openssl(
            dir.path(),
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                "server.ext",
                "-out",
                "server.pem",
            ],
        );
        TestCa { dir }
    }

    /// The authority's certificate (PEM): what a client trusts (`NATS_TLS_CA`).
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server's certificate and key, for [`crate::NatsOptions::tls`].
    pub fn server(&self) -> ServerTls {
        ServerTls {
            cert: self.dir.path().join("server.pem"),
            key: self.dir.path().join("server-key.pem"),
        }
    }
}

impl Default for TestCa {
    fn default() -> TestCa {
        TestCa::new()
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|err| panic!("cannot run openssl (is it installed?): {err}"));
    assert!(
        output.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}
