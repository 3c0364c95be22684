//! Process exit codes (sysexits).

/// Exit codes imapsort uses, from sysexits(3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Ok = 0,
    Usage = 2,
    /// EX_DATAERR: bad input data.
    DataErr = 65,
    /// EX_NOINPUT: an input file could not be opened (a message file in `test`).
    NoInput = 66,
    /// EX_UNAVAILABLE: a server could not be reached or logged in to.
    Unavailable = 69,
    /// EX_SOFTWARE: an internal error.
    Software = 70,
    /// EX_OSERR: the operating system refused something the daemon needs (the metrics
    /// address cannot be bound: in use, or not an address of this host). Not 78: such a
    /// cause often passes (a previous instance still stopping), so systemd may restart.
    OsErr = 71,
    /// EX_IOERR: the state database cannot be written (`sweep` changes nothing then).
    IoErr = 74,
    /// EX_TEMPFAIL: try again later (another process is working on a mailbox and `sweep --wait`
    /// ran out; a sign-in code expired).
    TempFail = 75,
    /// EX_NOPERM: permission denied (the user refused the sign-in).
    NoPerm = 77,
    /// EX_CONFIG: the configuration is invalid.
    Config = 78,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The more serious of `self` and `other`, for a command that goes on after a failure
    /// (`sweep`, `undo`): a state that cannot be written, then an unreachable server, then a
    /// busy mailbox; any other code does not replace one already set.
    pub fn worse(self, other: Exit) -> Exit {
        let rank = |e: Exit| match e {
            Exit::IoErr => 3,
            Exit::Unavailable => 2,
            Exit::TempFail => 1,
            _ => 0,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

#[cfg(test)]
mod tests {
    use super::Exit;

    #[test]
    fn the_more_serious_code_stays() {
        assert_eq!(Exit::Ok.worse(Exit::TempFail), Exit::TempFail);
        assert_eq!(Exit::TempFail.worse(Exit::Unavailable), Exit::Unavailable);
        assert_eq!(Exit::IoErr.worse(Exit::Unavailable), Exit::IoErr);
        assert_eq!(Exit::Unavailable.worse(Exit::Ok), Exit::Unavailable);
        assert_eq!(Exit::DataErr.worse(Exit::Ok), Exit::DataErr);
    }
}
