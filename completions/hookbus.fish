# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_hookbus_global_optspecs
    string join \n config= v/verbose h/help V/version
end

function __fish_hookbus_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_hookbus_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_hookbus_using_subcommand
    set -l cmd (__fish_hookbus_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c hookbus -n "__fish_hookbus_needs_command" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_needs_command" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hookbus -n "__fish_hookbus_needs_command" -s V -l version -d 'Print version'
complete -c hookbus -n "__fish_hookbus_needs_command" -f -a "post-receive" -d 'Run as a git post-receive hook: read `OLD NEW REFNAME` lines on stdin and emit one message per ref update and matching route'
complete -c hookbus -n "__fish_hookbus_needs_command" -f -a "replay" -d 'Emit what a push of OLDREV..NEWREV to REFNAME would have, treating every commit in the range as new'
complete -c hookbus -n "__fish_hookbus_needs_command" -f -a "install" -d 'Install the post-receive hook into bare repositories; an existing post-receive is kept and chained, never replaced'
complete -c hookbus -n "__fish_hookbus_needs_command" -f -a "config" -d 'Work with config files'
complete -c hookbus -n "__fish_hookbus_needs_command" -f -a "svn-post-commit" -d 'Run as a Subversion post-commit hook: emit one message per (project, branch) revision REV touches and matching route'
complete -c hookbus -n "__fish_hookbus_needs_command" -f -a "svn-replay" -d 'Emit what the post-commit hook would have for each revision of FROM[:TO] (TO may be HEAD), oldest first'
complete -c hookbus -n "__fish_hookbus_needs_command" -f -a "send" -d 'Publish stdin, byte for byte, as one message'
complete -c hookbus -n "__fish_hookbus_needs_command" -f -a "check" -d 'Validate the config and try each broker: reachable, authenticated, protocol version, round trip'
complete -c hookbus -n "__fish_hookbus_needs_command" -f -a "flush" -d 'Deliver the messages waiting in the outbox, oldest first, stopping at the first failure; messages the broker refuses for good become dead letters'
complete -c hookbus -n "__fish_hookbus_needs_command" -f -a "relay" -d 'Deliver the outbox for good: hold its lock and one broker connection, and send each file the moment a hook stores it'
complete -c hookbus -n "__fish_hookbus_needs_command" -f -a "outbox" -d 'Look at messages waiting in the local outbox, and dead letters'
complete -c hookbus -n "__fish_hookbus_needs_command" -f -a "listen" -d 'Run the deploy-host daemon until SIGTERM: subscribe to [listen] subscribe and keep every [[mirror]] up to date (fetch, checkout, in-place or branches); SIGHUP reloads the config'
complete -c hookbus -n "__fish_hookbus_needs_command" -f -a "webhook" -d 'Serve forge webhooks (GitHub, GitLab, Gitea, Forgejo) on [webhook] listen: their pushes become the same messages a hook sends'
complete -c hookbus -n "__fish_hookbus_needs_command" -f -a "fleet" -d 'Show the deploy hosts: hear their presence ([listen] presence) for a while, then print hosts × mirrors with commit, state and age; or send them a signed freeze, unfreeze or rollback'
complete -c hookbus -n "__fish_hookbus_needs_command" -f -a "ctl" -d 'Talk to a running `hookbus listen` through its control socket: mirror states, freeze, unfreeze, rollback, sync'
complete -c hookbus -n "__fish_hookbus_needs_command" -f -a "keygen" -d 'Write an Ed25519 key pair for signed messages: the private key to PATH (mode 0600, for [sign] key_file), the public key line to PATH.pub (for [listen] trust)'
complete -c hookbus -n "__fish_hookbus_using_subcommand post-receive" -l repo -d 'The repository [default: $GIT_DIR or the current directory]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand post-receive" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand post-receive" -l dry-run -d 'Print the messages as JSON lines instead of sending them'
complete -c hookbus -n "__fish_hookbus_using_subcommand post-receive" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_using_subcommand post-receive" -s h -l help -d 'Print help'
complete -c hookbus -n "__fish_hookbus_using_subcommand replay" -l repo -d 'The repository [default: $GIT_DIR or the current directory]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand replay" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand replay" -l dry-run -d 'Print the messages as JSON lines instead of sending them'
complete -c hookbus -n "__fish_hookbus_using_subcommand replay" -l each -d 'One message per commit, oldest first, as if pushed one by one'
complete -c hookbus -n "__fish_hookbus_using_subcommand replay" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_using_subcommand replay" -s h -l help -d 'Print help'
complete -c hookbus -n "__fish_hookbus_using_subcommand install" -l repo -d 'One repository' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand install" -l all -d 'Every bare repository below BASEDIR, except those [repos] skip names (gitolite-admin by default)' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand install" -l hookbus -d 'The hookbus binary the hook runs [default: this one]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand install" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand install" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_using_subcommand install" -s h -l help -d 'Print help'
complete -c hookbus -n "__fish_hookbus_using_subcommand config; and not __fish_seen_subcommand_from import-legacy" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand config; and not __fish_seen_subcommand_from import-legacy" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_using_subcommand config; and not __fish_seen_subcommand_from import-legacy" -s h -l help -d 'Print help'
complete -c hookbus -n "__fish_hookbus_using_subcommand config; and not __fish_seen_subcommand_from import-legacy" -f -a "import-legacy" -d 'Print the hookbus.toml equivalent of the seed\'s Ruby config (stomp-postrec.yaml, svn-stomp.yaml, or the deploy daemons\' stomp-git.yaml and stomp-jenkins.yaml), with comments where its options were silently ignored'
complete -c hookbus -n "__fish_hookbus_using_subcommand config; and __fish_seen_subcommand_from import-legacy" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand config; and __fish_seen_subcommand_from import-legacy" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_using_subcommand config; and __fish_seen_subcommand_from import-legacy" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hookbus -n "__fish_hookbus_using_subcommand svn-post-commit" -l name -d 'The repository\'s name in messages [default: its path below [repos] base, else its directory name]' -r
complete -c hookbus -n "__fish_hookbus_using_subcommand svn-post-commit" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand svn-post-commit" -l dry-run -d 'Print the messages as JSON lines instead of sending them'
complete -c hookbus -n "__fish_hookbus_using_subcommand svn-post-commit" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_using_subcommand svn-post-commit" -s h -l help -d 'Print help'
complete -c hookbus -n "__fish_hookbus_using_subcommand svn-replay" -l name -d 'The repository\'s name in messages [default: its path below [repos] base, else its directory name]' -r
complete -c hookbus -n "__fish_hookbus_using_subcommand svn-replay" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand svn-replay" -l dry-run -d 'Print the messages as JSON lines instead of sending them'
complete -c hookbus -n "__fish_hookbus_using_subcommand svn-replay" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_using_subcommand svn-replay" -s h -l help -d 'Print help'
complete -c hookbus -n "__fish_hookbus_using_subcommand send" -l destination -d 'Where to send it, e.g. /topic/builds' -r
complete -c hookbus -n "__fish_hookbus_using_subcommand send" -l header -d 'An extra header (repeatable)' -r
complete -c hookbus -n "__fish_hookbus_using_subcommand send" -l subject -d 'The subject header' -r
complete -c hookbus -n "__fish_hookbus_using_subcommand send" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand send" -l dry-run -d 'Print the message as a JSON line instead of sending it'
complete -c hookbus -n "__fish_hookbus_using_subcommand send" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_using_subcommand send" -s h -l help -d 'Print help'
complete -c hookbus -n "__fish_hookbus_using_subcommand check" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand check" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hookbus -n "__fish_hookbus_using_subcommand flush" -l wait -d 'How long to wait for another hookbus that is delivering from the outbox (seconds)' -r
complete -c hookbus -n "__fish_hookbus_using_subcommand flush" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand flush" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_using_subcommand flush" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hookbus -n "__fish_hookbus_using_subcommand relay" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand relay" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_using_subcommand relay" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hookbus -n "__fish_hookbus_using_subcommand outbox; and not __fish_seen_subcommand_from list show retry" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand outbox; and not __fish_seen_subcommand_from list show retry" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_using_subcommand outbox; and not __fish_seen_subcommand_from list show retry" -s h -l help -d 'Print help'
complete -c hookbus -n "__fish_hookbus_using_subcommand outbox; and not __fish_seen_subcommand_from list show retry" -f -a "list" -d 'List waiting messages, oldest first, then dead letters with their reasons, damaged files, and pushes hooks kept'
complete -c hookbus -n "__fish_hookbus_using_subcommand outbox; and not __fish_seen_subcommand_from list show retry" -f -a "show" -d 'Print the messages of one file as JSON lines (like --dry-run)'
complete -c hookbus -n "__fish_hookbus_using_subcommand outbox; and not __fish_seen_subcommand_from list show retry" -f -a "retry" -d 'Put dead letters back in the outbox, ahead of newer messages, for the next flush'
complete -c hookbus -n "__fish_hookbus_using_subcommand outbox; and __fish_seen_subcommand_from list" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand outbox; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_using_subcommand outbox; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c hookbus -n "__fish_hookbus_using_subcommand outbox; and __fish_seen_subcommand_from show" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand outbox; and __fish_seen_subcommand_from show" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_using_subcommand outbox; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c hookbus -n "__fish_hookbus_using_subcommand outbox; and __fish_seen_subcommand_from retry" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand outbox; and __fish_seen_subcommand_from retry" -l all -d 'Every dead letter'
complete -c hookbus -n "__fish_hookbus_using_subcommand outbox; and __fish_seen_subcommand_from retry" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_using_subcommand outbox; and __fish_seen_subcommand_from retry" -s h -l help -d 'Print help'
complete -c hookbus -n "__fish_hookbus_using_subcommand listen" -l sample -d 'With --check: the sample message, a JSON object {"headers": {NAME: VALUE, ...}, "body": TEXT}' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand listen" -l host -d 'With --check: show what host NAME would run (the mirrors and actions whose hosts globs take it) [default: [listen] host, else this machine\'s name]' -r
complete -c hookbus -n "__fish_hookbus_using_subcommand listen" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand listen" -l check -d 'Check the config and print how a sample message reads (a branch push of repo "example" unless --sample), the mirrors it would update and each [[action]] with what it would do; nothing is run or sent'
complete -c hookbus -n "__fish_hookbus_using_subcommand listen" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_using_subcommand listen" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hookbus -n "__fish_hookbus_using_subcommand webhook" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand webhook" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_using_subcommand webhook" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and not __fish_seen_subcommand_from freeze unfreeze rollback" -l for -d 'How long to listen [default: [listen] presence_s (60) and a tenth more, at least 2 s more, so that every live host is heard once]' -r
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and not __fish_seen_subcommand_from freeze unfreeze rollback" -l state -d 'Where hosts heard are remembered (a command expects answers from the ones up in it) [default: $XDG_STATE_HOME/hookbus/fleet.json, else ~/.local/state/hookbus/fleet.json]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and not __fish_seen_subcommand_from freeze unfreeze rollback" -l destination -d 'The presence destination [default: [listen] presence]' -r
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and not __fish_seen_subcommand_from freeze unfreeze rollback" -l durable -d 'The durable subscription to D.last, where hosts leave their last "leaving" document: made by the first run, it keeps them for the next (one name per reader of the fleet)' -r
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and not __fish_seen_subcommand_from freeze unfreeze rollback" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and not __fish_seen_subcommand_from freeze unfreeze rollback" -l json -d 'Print JSON instead of the table (for a command: the command and its answers, as one object)'
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and not __fish_seen_subcommand_from freeze unfreeze rollback" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and not __fish_seen_subcommand_from freeze unfreeze rollback" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and not __fish_seen_subcommand_from freeze unfreeze rollback" -f -a "freeze" -d 'Hold MIRROR\'s target where it is (on this host\'s listener, or with `fleet` on each listener --hosts takes); the mirror still fetches'
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and not __fish_seen_subcommand_from freeze unfreeze rollback" -f -a "unfreeze" -d 'Let MIRROR follow its branch again (on this host\'s listener, or with `fleet` on each listener --hosts takes); it catches up at once'
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and not __fish_seen_subcommand_from freeze unfreeze rollback" -f -a "rollback" -d 'Publish REV at MIRROR\'s target (atomically, as updates do) and hold it there until unfreeze (on this host\'s listener, or with `fleet` on each listener --hosts takes); refused when the mirror\'s clone has no such commit, and for mirrors of mode fetch'
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and __fish_seen_subcommand_from freeze" -l hosts -d 'The listeners that apply the command: a glob of host names ([listen] host, else the machine\'s name), e.g. \'web*\'; \'*\' for all' -r
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and __fish_seen_subcommand_from freeze" -l topic -d 'Where the listeners take commands [default: [listen] control_topic]' -r
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and __fish_seen_subcommand_from freeze" -l wait -d 'How long to wait for the listeners\' answers on [listen] report; it ends sooner once every host that --state has as up and GLOB takes has answered' -r
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and __fish_seen_subcommand_from freeze" -l state -d 'Where hosts heard are remembered (a command expects answers from the ones up in it) [default: $XDG_STATE_HOME/hookbus/fleet.json, else ~/.local/state/hookbus/fleet.json]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and __fish_seen_subcommand_from freeze" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and __fish_seen_subcommand_from freeze" -l json -d 'Print JSON instead of the table (for a command: the command and its answers, as one object)'
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and __fish_seen_subcommand_from freeze" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and __fish_seen_subcommand_from freeze" -s h -l help -d 'Print help'
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and __fish_seen_subcommand_from unfreeze" -l hosts -d 'The listeners that apply the command: a glob of host names ([listen] host, else the machine\'s name), e.g. \'web*\'; \'*\' for all' -r
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and __fish_seen_subcommand_from unfreeze" -l topic -d 'Where the listeners take commands [default: [listen] control_topic]' -r
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and __fish_seen_subcommand_from unfreeze" -l wait -d 'How long to wait for the listeners\' answers on [listen] report; it ends sooner once every host that --state has as up and GLOB takes has answered' -r
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and __fish_seen_subcommand_from unfreeze" -l state -d 'Where hosts heard are remembered (a command expects answers from the ones up in it) [default: $XDG_STATE_HOME/hookbus/fleet.json, else ~/.local/state/hookbus/fleet.json]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and __fish_seen_subcommand_from unfreeze" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and __fish_seen_subcommand_from unfreeze" -l json -d 'Print JSON instead of the table (for a command: the command and its answers, as one object)'
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and __fish_seen_subcommand_from unfreeze" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and __fish_seen_subcommand_from unfreeze" -s h -l help -d 'Print help'
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and __fish_seen_subcommand_from rollback" -l hosts -d 'The listeners that apply the command: a glob of host names ([listen] host, else the machine\'s name), e.g. \'web*\'; \'*\' for all' -r
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and __fish_seen_subcommand_from rollback" -l topic -d 'Where the listeners take commands [default: [listen] control_topic]' -r
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and __fish_seen_subcommand_from rollback" -l wait -d 'How long to wait for the listeners\' answers on [listen] report; it ends sooner once every host that --state has as up and GLOB takes has answered' -r
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and __fish_seen_subcommand_from rollback" -l state -d 'Where hosts heard are remembered (a command expects answers from the ones up in it) [default: $XDG_STATE_HOME/hookbus/fleet.json, else ~/.local/state/hookbus/fleet.json]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and __fish_seen_subcommand_from rollback" -l branch -d 'For mode branches: the published branch to roll back' -r
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and __fish_seen_subcommand_from rollback" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and __fish_seen_subcommand_from rollback" -l json -d 'Print JSON instead of the table (for a command: the command and its answers, as one object)'
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and __fish_seen_subcommand_from rollback" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_using_subcommand fleet; and __fish_seen_subcommand_from rollback" -s h -l help -d 'Print help'
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and not __fish_seen_subcommand_from status freeze unfreeze rollback sync" -l socket -d 'The listener\'s control socket [default: [listen] state_dir/control.sock]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and not __fish_seen_subcommand_from status freeze unfreeze rollback sync" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and not __fish_seen_subcommand_from status freeze unfreeze rollback sync" -l json -d 'Print the listener\'s answer as one JSON object, for scripts'
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and not __fish_seen_subcommand_from status freeze unfreeze rollback sync" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and not __fish_seen_subcommand_from status freeze unfreeze rollback sync" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and not __fish_seen_subcommand_from status freeze unfreeze rollback sync" -f -a "status" -d 'Show every mirror: mode, state, commit, when it last changed, last error'
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and not __fish_seen_subcommand_from status freeze unfreeze rollback sync" -f -a "freeze" -d 'Hold MIRROR\'s target where it is (on this host\'s listener, or with `fleet` on each listener --hosts takes); the mirror still fetches'
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and not __fish_seen_subcommand_from status freeze unfreeze rollback sync" -f -a "unfreeze" -d 'Let MIRROR follow its branch again (on this host\'s listener, or with `fleet` on each listener --hosts takes); it catches up at once'
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and not __fish_seen_subcommand_from status freeze unfreeze rollback sync" -f -a "rollback" -d 'Publish REV at MIRROR\'s target (atomically, as updates do) and hold it there until unfreeze (on this host\'s listener, or with `fleet` on each listener --hosts takes); refused when the mirror\'s clone has no such commit, and for mirrors of mode fetch'
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and not __fish_seen_subcommand_from status freeze unfreeze rollback sync" -f -a "sync" -d 'Fetch MIRROR now (and publish, unless it is held); returns when done'
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and __fish_seen_subcommand_from status" -l socket -d 'The listener\'s control socket [default: [listen] state_dir/control.sock]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and __fish_seen_subcommand_from status" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and __fish_seen_subcommand_from status" -l json -d 'Print the listener\'s answer as one JSON object, for scripts'
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and __fish_seen_subcommand_from status" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and __fish_seen_subcommand_from freeze" -l socket -d 'The listener\'s control socket [default: [listen] state_dir/control.sock]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and __fish_seen_subcommand_from freeze" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and __fish_seen_subcommand_from freeze" -l json -d 'Print the listener\'s answer as one JSON object, for scripts'
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and __fish_seen_subcommand_from freeze" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and __fish_seen_subcommand_from freeze" -s h -l help -d 'Print help'
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and __fish_seen_subcommand_from unfreeze" -l socket -d 'The listener\'s control socket [default: [listen] state_dir/control.sock]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and __fish_seen_subcommand_from unfreeze" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and __fish_seen_subcommand_from unfreeze" -l json -d 'Print the listener\'s answer as one JSON object, for scripts'
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and __fish_seen_subcommand_from unfreeze" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and __fish_seen_subcommand_from unfreeze" -s h -l help -d 'Print help'
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and __fish_seen_subcommand_from rollback" -l branch -d 'For mode branches: the published branch to roll back' -r
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and __fish_seen_subcommand_from rollback" -l socket -d 'The listener\'s control socket [default: [listen] state_dir/control.sock]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and __fish_seen_subcommand_from rollback" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and __fish_seen_subcommand_from rollback" -l json -d 'Print the listener\'s answer as one JSON object, for scripts'
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and __fish_seen_subcommand_from rollback" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and __fish_seen_subcommand_from rollback" -s h -l help -d 'Print help'
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and __fish_seen_subcommand_from sync" -l socket -d 'The listener\'s control socket [default: [listen] state_dir/control.sock]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and __fish_seen_subcommand_from sync" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and __fish_seen_subcommand_from sync" -l json -d 'Print the listener\'s answer as one JSON object, for scripts'
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and __fish_seen_subcommand_from sync" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_using_subcommand ctl; and __fish_seen_subcommand_from sync" -s h -l help -d 'Print help'
complete -c hookbus -n "__fish_hookbus_using_subcommand keygen" -l config -d 'Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]' -r -F
complete -c hookbus -n "__fish_hookbus_using_subcommand keygen" -l force -d 'Replace an existing key pair'
complete -c hookbus -n "__fish_hookbus_using_subcommand keygen" -s v -l verbose -d 'Say more on stderr (repeat for even more)'
complete -c hookbus -n "__fish_hookbus_using_subcommand keygen" -s h -l help -d 'Print help'
