"""What dev-sec's ssh-baseline expects of sshd, as `sshd -T` prints it.

Written from the public control list of https://github.com/dev-sec/ssh-baseline
(controls/sshd_spec.rb, sshd-01 to sshd-49, and the crypto lists its
libraries/ssh_crypto.rb gives for OpenSSH 8.5 and later; Debian 12 ships 9.2,
Debian 13 10.0). The baseline reads /etc/ssh/sshd_config; our settings are in
a drop-in, so the values are compared with the effective configuration.

KEPT lists the deviations we keep on purpose, with the reason. The test fails
on any other deviation, and on a kept one that no longer deviates, so this
file, the test and docs/developer/devsec-baseline.md stay true together.
"""

# What `sshd -T` shows for an option that OpenSSH no longer has.
ABSENT = None
# sshd-09 wants a ListenAddress set; unset, `sshd -T` lists the wildcards.
NOT_WILDCARD = "not a wildcard address"
WILDCARDS = {"0.0.0.0:22", "[::]:22"}

# (control, sshd -T keyword, expected): a string is the one value; a tuple any
# of these values; a list every line of a repeated keyword, in any order.
BASELINE = (
    ("sshd-01", "ciphers", "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,"
                           "aes256-ctr,aes192-ctr,aes128-ctr"),
    ("sshd-02", "kexalgorithms", "sntrup761x25519-sha512@openssh.com,curve25519-sha256@libssh.org,"
                                 "diffie-hellman-group-exchange-sha256"),
    ("sshd-03", "macs", "hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com,"
                        "hmac-sha2-512,hmac-sha2-256"),
    # sshd -T prints prohibit-password under its old name.
    ("sshd-06", "permitrootlogin", ("no", "without-password")),
    ("sshd-07", "port", "22"),
    ("sshd-08", "addressfamily", ("any", "inet", "inet6")),
    ("sshd-09", "listenaddress", NOT_WILDCARD),
    ("sshd-10", "protocol", "2"),
    ("sshd-11", "strictmodes", "yes"),
    ("sshd-12", "syslogfacility", "AUTH"),
    ("sshd-13", "loglevel", "VERBOSE"),
    ("sshd-14", "hostkey", ["/etc/ssh/ssh_host_rsa_key", "/etc/ssh/ssh_host_ecdsa_key",
                            "/etc/ssh/ssh_host_ed25519_key"]),
    ("sshd-15", "uselogin", ABSENT),
    ("sshd-16", "useprivilegeseparation", ABSENT),
    ("sshd-17", "permituserenvironment", "no"),
    # 30s; sshd -T prints seconds.
    ("sshd-18", "logingracetime", "30"),
    ("sshd-19", "maxauthtries", "2"),
    ("sshd-20", "maxsessions", "10"),
    ("sshd-21", "maxstartups", "10:30:100"),
    ("sshd-22", "pubkeyauthentication", "yes"),
    ("sshd-23", "ignorerhosts", "yes"),
    ("sshd-24", "ignoreuserknownhosts", "yes"),
    ("sshd-25", "hostbasedauthentication", "no"),
    ("sshd-27", "passwordauthentication", "no"),
    ("sshd-28", "permitemptypasswords", "no"),
    # ChallengeResponseAuthentication is an alias of KbdInteractiveAuthentication (OpenSSH 8.7).
    ("sshd-29", "kbdinteractiveauthentication", "no"),
    ("sshd-30", "kerberosauthentication", "no"),
    ("sshd-31", "kerberosorlocalpasswd", "no"),
    ("sshd-32", "kerberosticketcleanup", "yes"),
    ("sshd-33", "gssapiauthentication", "no"),
    ("sshd-34", "gssapicleanupcredentials", "yes"),
    ("sshd-35", "tcpkeepalive", "no"),
    ("sshd-36", "clientaliveinterval", "300"),
    ("sshd-37", "clientalivecountmax", "3"),
    ("sshd-38", "permittunnel", "no"),
    ("sshd-39", "allowtcpforwarding", "no"),
    ("sshd-40", "allowagentforwarding", "no"),
    ("sshd-41", "gatewayports", "no"),
    ("sshd-42", "x11forwarding", "no"),
    ("sshd-43", "x11uselocalhost", "yes"),
    ("sshd-44", "printmotd", "no"),
    ("sshd-45", "printlastlog", "no"),
    ("sshd-46", "banner", "none"),
    # Debian's own option: no distribution and patch level in the version string.
    ("sshd-47", "debianbanner", "no"),
)

# Not in the baseline, held to the same standard: with TCP forwarding off,
# Unix-socket forwarding would still reach any socket the user may open
# (docker.sock for a member of the docker group).
OURS = (
    ("aiquiz", "allowstreamlocalforwarding", "no"),
)

# control: the reason we keep its deviation.
KEPT = {
    "sshd-02": "ML-KEM (OpenSSH 10) and sntrup761 first, then curve25519-sha256 under its RFC 8731 and its older "
               "name; no diffie-hellman-group-exchange-sha256: finite-field DH on /etc/ssh/moduli, slower, and "
               "no better than the curve25519 exchanges above it.",
    "sshd-03": "Encrypt-then-MAC only: the baseline's list without its two MAC-then-encrypt entries "
               "(hmac-sha2-512, hmac-sha2-256).",
    "sshd-09": "No ListenAddress: the address depends on each host's networks; the firewall role limits who "
               "reaches port 22.",
    "sshd-10": "Protocol was removed in OpenSSH 7.6 (only protocol 2 exists); sshd -T has no such line.",
    "sshd-14": "No ECDSA host key: Ed25519 and RSA only (hardening_ssh_host_keys); Debian's existing keys are kept.",
    "sshd-19": "MaxAuthTries 3, not 2: room for an agent that offers two keys before the right one.",
    "sshd-37": "ClientAliveCountMax 2, not 3: 2 x 300 s drops a dead session after 10 minutes.",
    "sshd-46": "Banner /etc/issue.net, not none: an authorised-use notice before login, on purpose.",
}


def parse(sshd_t):
    """sshd -T output as keyword: [values] (repeated keywords keep every value)."""
    settings = {}
    for line in sshd_t.splitlines():
        key, _sep, value = line.strip().partition(" ")
        if key:
            settings.setdefault(key.lower(), []).append(value)
    return settings


def matches(expected, values):
    if expected is ABSENT:
        return not values
    if expected == NOT_WILDCARD:
        return bool(values) and not set(values) & WILDCARDS
    if isinstance(expected, list):
        return sorted(values) == sorted(expected)
    if isinstance(expected, tuple):
        return len(values) == 1 and values[0] in expected
    return values == [expected]


def deviations(sshd_t, version_string):
    """[(control, keyword, expected, effective)] for every baseline or extra entry sshd does not meet.

    version_string is the identification sshd sends (SSH-2.0-...): Debian 12's
    sshd -T does not print DebianBanner, so there its effect is read instead.
    """
    settings = parse(sshd_t)
    if "debianbanner" not in settings:
        settings["debianbanner"] = ["yes" if "Debian" in version_string else "no"]
    out = []
    for control, keyword, expected in BASELINE + OURS:
        values = settings.get(keyword, [])
        if not matches(expected, values):
            out.append((control, keyword, expected, values))
    return out
