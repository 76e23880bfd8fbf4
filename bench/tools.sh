# Sourced by bench/run and bench/soak: checks the tools a script needs and, when some
# are missing, prints the one apt-get line that installs them, then exits.
#   need COMMAND PACKAGE ...   (once per tool)
#   check_tools SCRIPT-NAME    (after the last need)

# command -> Debian package (sshd and nginx live in /usr/sbin, often not on a user's PATH)
missing=()
need() {
    local command="$1" package="$2"
    if ! command -v "$command" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$command" ] && ! [ -x "/sbin/$command" ]; then
        case " ${missing[*]-} " in *" $package "*) ;; *) missing+=("$package") ;; esac
    fi
}

check_tools() {
    local script="$1"
    if [ ${#missing[@]} -gt 0 ]; then
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo "
        echo "$script needs ${missing[*]}. Install with:" >&2
        echo "    ${sudo}apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))'; then
        echo "$script needs Python 3.9 or newer (python3 is $(python3 --version 2>&1))." >&2
        exit 1
    fi
}
