# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_imapsort_global_optspecs
    string join \n log-format= h/help V/version
end

function __fish_imapsort_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_imapsort_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_imapsort_using_subcommand
    set -l cmd (__fish_imapsort_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c imapsort -n "__fish_imapsort_needs_command" -l log-format -d 'Log line format on stderr (journald fields are used when JOURNAL_STREAM is set)' -r -f -a "text\t''
json\t''"
complete -c imapsort -n "__fish_imapsort_needs_command" -s h -l help -d 'Print help'
complete -c imapsort -n "__fish_imapsort_needs_command" -s V -l version -d 'Print version'
complete -c imapsort -n "__fish_imapsort_needs_command" -f -a "check" -d 'Validate the configuration file; print every error and warning'
complete -c imapsort -n "__fish_imapsort_needs_command" -f -a "test" -d 'Evaluate the rules against message files, without a server'
complete -c imapsort -n "__fish_imapsort_needs_command" -f -a "sweep" -d 'One pass of all rules (both triggers) over existing mail'
complete -c imapsort -n "__fish_imapsort_needs_command" -f -a "run" -d 'Run the daemon: IDLE push, sweeps, hot reload'
complete -c imapsort -n "__fish_imapsort_needs_command" -f -a "folders" -d 'List mailboxes with their special use and message counts'
complete -c imapsort -n "__fish_imapsort_needs_command" -f -a "status" -d 'Show what the state database knows: last handled UIDs, errors, recent actions'
complete -c imapsort -n "__fish_imapsort_needs_command" -f -a "login" -d 'Sign an `auth: oauth2` account in once (OAuth 2.0); the daemon refreshes from then on'
complete -c imapsort -n "__fish_imapsort_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c imapsort -n "__fish_imapsort_needs_command" -f -a "man" -d 'Print the man page (roff)'
complete -c imapsort -n "__fish_imapsort_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c imapsort -n "__fish_imapsort_using_subcommand check" -s c -l config -d 'Configuration file [default: $IMAPSORT_CONFIG, else $XDG_CONFIG_HOME/imapsort/config.yaml, else /etc/imapsort/config.yaml]' -r -F
complete -c imapsort -n "__fish_imapsort_using_subcommand check" -l log-format -d 'Log line format on stderr (journald fields are used when JOURNAL_STREAM is set)' -r -f -a "text\t''
json\t''"
complete -c imapsort -n "__fish_imapsort_using_subcommand check" -s h -l help -d 'Print help'
complete -c imapsort -n "__fish_imapsort_using_subcommand test" -s c -l config -d 'Configuration file [default: $IMAPSORT_CONFIG, else $XDG_CONFIG_HOME/imapsort/config.yaml, else /etc/imapsort/config.yaml]' -r -F
complete -c imapsort -n "__fish_imapsort_using_subcommand test" -l account -d 'Account the messages belong to [default: the first account, if any]' -r
complete -c imapsort -n "__fish_imapsort_using_subcommand test" -l mailbox -d 'Mailbox the messages are in' -r
complete -c imapsort -n "__fish_imapsort_using_subcommand test" -l flags -d 'Flags the messages carry, comma-separated (\'\\Seen,\\Flagged,work\')' -r
complete -c imapsort -n "__fish_imapsort_using_subcommand test" -l received -d 'Arrival time (RFC 3339) [default: the Date header, else now]' -r
complete -c imapsort -n "__fish_imapsort_using_subcommand test" -l trigger -d 'Evaluate only rules of this trigger [default: both]' -r -f -a "new\t''
sweep\t''"
complete -c imapsort -n "__fish_imapsort_using_subcommand test" -l format -r -f -a "text\t''
json\t''"
complete -c imapsort -n "__fish_imapsort_using_subcommand test" -l log-format -d 'Log line format on stderr (journald fields are used when JOURNAL_STREAM is set)' -r -f -a "text\t''
json\t''"
complete -c imapsort -n "__fish_imapsort_using_subcommand test" -s h -l help -d 'Print help'
complete -c imapsort -n "__fish_imapsort_using_subcommand sweep" -s c -l config -d 'Configuration file [default: $IMAPSORT_CONFIG, else $XDG_CONFIG_HOME/imapsort/config.yaml, else /etc/imapsort/config.yaml]' -r -F
complete -c imapsort -n "__fish_imapsort_using_subcommand sweep" -l account -d 'Only this account' -r
complete -c imapsort -n "__fish_imapsort_using_subcommand sweep" -l mailbox -d 'Only this mailbox (INBOX in any spelling is INBOX)' -r
complete -c imapsort -n "__fish_imapsort_using_subcommand sweep" -l format -r -f -a "text\t''
json\t''"
complete -c imapsort -n "__fish_imapsort_using_subcommand sweep" -l wait -d 'How long to wait for a mailbox another imapsort process (the daemon, another sweep) is working on, before giving up with exit 75 (e.g. 90s, 5m, 0s)' -r
complete -c imapsort -n "__fish_imapsort_using_subcommand sweep" -l shard -d 'Handle only the accounts of shard I of N (FNV-1a 64 of the account name, modulo N); the others are neither connected to nor reported' -r
complete -c imapsort -n "__fish_imapsort_using_subcommand sweep" -l log-format -d 'Log line format on stderr (journald fields are used when JOURNAL_STREAM is set)' -r -f -a "text\t''
json\t''"
complete -c imapsort -n "__fish_imapsort_using_subcommand sweep" -l dry-run -d 'Show what would happen; change nothing on the server'
complete -c imapsort -n "__fish_imapsort_using_subcommand sweep" -s h -l help -d 'Print help'
complete -c imapsort -n "__fish_imapsort_using_subcommand run" -s c -l config -d 'Configuration file [default: $IMAPSORT_CONFIG, else $XDG_CONFIG_HOME/imapsort/config.yaml, else /etc/imapsort/config.yaml]' -r -F
complete -c imapsort -n "__fish_imapsort_using_subcommand run" -l shard -d 'Handle only the accounts of shard I of N (FNV-1a 64 of the account name, modulo N); the others are neither connected to nor reported' -r
complete -c imapsort -n "__fish_imapsort_using_subcommand run" -l metrics-listen -d 'Serve /metrics and /health on HOST:PORT instead of settings.metrics_listen (for several instances of one configuration on one host)' -r
complete -c imapsort -n "__fish_imapsort_using_subcommand run" -l log-format -d 'Log line format on stderr (journald fields are used when JOURNAL_STREAM is set)' -r -f -a "text\t''
json\t''"
complete -c imapsort -n "__fish_imapsort_using_subcommand run" -s h -l help -d 'Print help'
complete -c imapsort -n "__fish_imapsort_using_subcommand folders" -s c -l config -d 'Configuration file [default: $IMAPSORT_CONFIG, else $XDG_CONFIG_HOME/imapsort/config.yaml, else /etc/imapsort/config.yaml]' -r -F
complete -c imapsort -n "__fish_imapsort_using_subcommand folders" -l account -d 'Only this account' -r
complete -c imapsort -n "__fish_imapsort_using_subcommand folders" -l log-format -d 'Log line format on stderr (journald fields are used when JOURNAL_STREAM is set)' -r -f -a "text\t''
json\t''"
complete -c imapsort -n "__fish_imapsort_using_subcommand folders" -s h -l help -d 'Print help'
complete -c imapsort -n "__fish_imapsort_using_subcommand status" -s c -l config -d 'Configuration file [default: $IMAPSORT_CONFIG, else $XDG_CONFIG_HOME/imapsort/config.yaml, else /etc/imapsort/config.yaml]' -r -F
complete -c imapsort -n "__fish_imapsort_using_subcommand status" -l format -r -f -a "text\t''
json\t''"
complete -c imapsort -n "__fish_imapsort_using_subcommand status" -l shard -d 'Handle only the accounts of shard I of N (FNV-1a 64 of the account name, modulo N); the others are neither connected to nor reported' -r
complete -c imapsort -n "__fish_imapsort_using_subcommand status" -l log-format -d 'Log line format on stderr (journald fields are used when JOURNAL_STREAM is set)' -r -f -a "text\t''
json\t''"
complete -c imapsort -n "__fish_imapsort_using_subcommand status" -s h -l help -d 'Print help'
complete -c imapsort -n "__fish_imapsort_using_subcommand login" -s c -l config -d 'Configuration file [default: $IMAPSORT_CONFIG, else $XDG_CONFIG_HOME/imapsort/config.yaml, else /etc/imapsort/config.yaml]' -r -F
complete -c imapsort -n "__fish_imapsort_using_subcommand login" -l method -d 'Sign-in method [default: device when the provider has a device endpoint, else browser]' -r -f -a "device\t'Show a code to enter at the provider\'s page, on any device (RFC 8628)'
browser\t'Open a URL in a browser; it comes back to a listener on 127.0.0.1, or paste the address it ended on (RFC 8252, PKCE)'"
complete -c imapsort -n "__fish_imapsort_using_subcommand login" -l log-format -d 'Log line format on stderr (journald fields are used when JOURNAL_STREAM is set)' -r -f -a "text\t''
json\t''"
complete -c imapsort -n "__fish_imapsort_using_subcommand login" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c imapsort -n "__fish_imapsort_using_subcommand completions" -l log-format -d 'Log line format on stderr (journald fields are used when JOURNAL_STREAM is set)' -r -f -a "text\t''
json\t''"
complete -c imapsort -n "__fish_imapsort_using_subcommand completions" -s h -l help -d 'Print help'
complete -c imapsort -n "__fish_imapsort_using_subcommand man" -l log-format -d 'Log line format on stderr (journald fields are used when JOURNAL_STREAM is set)' -r -f -a "text\t''
json\t''"
complete -c imapsort -n "__fish_imapsort_using_subcommand man" -s h -l help -d 'Print help'
complete -c imapsort -n "__fish_imapsort_using_subcommand help; and not __fish_seen_subcommand_from check test sweep run folders status login completions man help" -f -a "check" -d 'Validate the configuration file; print every error and warning'
complete -c imapsort -n "__fish_imapsort_using_subcommand help; and not __fish_seen_subcommand_from check test sweep run folders status login completions man help" -f -a "test" -d 'Evaluate the rules against message files, without a server'
complete -c imapsort -n "__fish_imapsort_using_subcommand help; and not __fish_seen_subcommand_from check test sweep run folders status login completions man help" -f -a "sweep" -d 'One pass of all rules (both triggers) over existing mail'
complete -c imapsort -n "__fish_imapsort_using_subcommand help; and not __fish_seen_subcommand_from check test sweep run folders status login completions man help" -f -a "run" -d 'Run the daemon: IDLE push, sweeps, hot reload'
complete -c imapsort -n "__fish_imapsort_using_subcommand help; and not __fish_seen_subcommand_from check test sweep run folders status login completions man help" -f -a "folders" -d 'List mailboxes with their special use and message counts'
complete -c imapsort -n "__fish_imapsort_using_subcommand help; and not __fish_seen_subcommand_from check test sweep run folders status login completions man help" -f -a "status" -d 'Show what the state database knows: last handled UIDs, errors, recent actions'
complete -c imapsort -n "__fish_imapsort_using_subcommand help; and not __fish_seen_subcommand_from check test sweep run folders status login completions man help" -f -a "login" -d 'Sign an `auth: oauth2` account in once (OAuth 2.0); the daemon refreshes from then on'
complete -c imapsort -n "__fish_imapsort_using_subcommand help; and not __fish_seen_subcommand_from check test sweep run folders status login completions man help" -f -a "completions" -d 'Print a shell completion script'
complete -c imapsort -n "__fish_imapsort_using_subcommand help; and not __fish_seen_subcommand_from check test sweep run folders status login completions man help" -f -a "man" -d 'Print the man page (roff)'
complete -c imapsort -n "__fish_imapsort_using_subcommand help; and not __fish_seen_subcommand_from check test sweep run folders status login completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
