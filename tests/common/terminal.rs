//! A real terminal for the tests of what fanout does on one (the confirmation prompt):
//! a private tmux server, and the isolated command line that runs fanout in its pane.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::TestEnv;

/// A private tmux server on a socket in a temporary directory, killed (and its socket
/// removed) when dropped.
pub struct Tmux {
    dir: tempfile::TempDir,
}

impl Tmux {
    /// `None`, with the reason printed, when tmux cannot be run here.
    pub fn start() -> Option<Self> {
        if !Command::new("tmux").arg("-V").output().is_ok_and(|output| output.status.success()) {
            println!("skipped: tmux is not installed (apt-get install tmux), so no pseudo-terminal test");
            return None;
        }
        Some(Self::another())
    }

    /// Another server, for another session side by side.
    pub fn another() -> Self {
        Tmux { dir: tempfile::tempdir().unwrap() }
    }

    pub fn tmux(&self) -> Command {
        let mut command = Command::new("tmux");
        command.arg("-S").arg(self.dir.path().join("socket")).args(["-f", "/dev/null"]);
        command
    }

    /// Runs `script` (a shell command line) in a new detached session's 200x50 pane.
    pub fn run(&self, script: &str) {
        self.run_sized(script, 200, 50);
    }

    pub fn run_sized(&self, script: &str, width: u16, height: u16) {
        let (width, height) = (width.to_string(), height.to_string());
        let status = self.tmux().args(["new-session", "-d", "-x", &width, "-y", &height, script]).status().unwrap();
        assert!(status.success(), "tmux new-session");
    }

    /// What the pane shows now.
    pub fn pane(&self) -> String {
        self.capture(&["-p"])
    }

    /// The pane with its history, wrapped lines joined: for text longer than the screen.
    pub fn whole_pane(&self) -> String {
        self.capture(&["-p", "-J", "-S", "-"])
    }

    fn capture(&self, how: &[&str]) -> String {
        let output = self.tmux().arg("capture-pane").args(how).output().unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Waits until the pane shows `text`; panics with the pane after 60 s.
    pub fn wait_for(&self, text: &str) -> String {
        self.wait_until_shown(text, Self::pane)
    }

    /// [`Tmux::wait_for`] over the whole pane.
    pub fn wait_for_in_whole(&self, text: &str) -> String {
        self.wait_until_shown(text, Self::whole_pane)
    }

    fn wait_until_shown(&self, text: &str, capture: fn(&Self) -> String) -> String {
        let deadline = Instant::now() + Duration::from_mins(1);
        loop {
            let pane = capture(self);
            if pane.contains(text) {
                return pane;
            }
            assert!(Instant::now() < deadline, "the pane never showed {text:?}:\n{pane}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Types `text` and Enter.
    pub fn type_line(&self, text: &str) {
        let status = self.tmux().args(["send-keys", "-t", "0", text, "Enter"]).status().unwrap();
        assert!(status.success(), "tmux send-keys");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").stderr(Stdio::null()).status();
    }
}

/// `env -i VARS… fanout`, as words of a shell line: `env`'s HOME and config, the portal
/// at `portal_url`, a terminal type, and nothing else of the caller's environment.
pub fn isolated_fanout_words(env: &TestEnv, portal_url: &str) -> Vec<String> {
    let vars = [
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        ("HOME", env.home().display().to_string()),
        ("AWS_CONFIG_FILE", env.config_path().display().to_string()),
        ("AWS_ENDPOINT_URL_SSO", portal_url.to_owned()),
        ("TERM", "xterm".to_owned()),
    ];
    let mut words: Vec<String> = vec!["env".into(), "-i".into()];
    words.extend(vars.iter().map(|(name, value)| format!("{name}={value}")));
    words.push(assert_cmd::cargo::cargo_bin("fanout").display().to_string());
    words
}
