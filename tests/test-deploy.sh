#!/bin/bash
# test-deploy.sh: checks the deployment files under deploy/.
#
#   tests/test-deploy.sh SOURCE_ROOT [MTASTSD_BINARY]
#
# Without the binary: the systemd unit (systemd-analyze verify, or a strict parse where
# systemd-analyze cannot run), every Kubernetes manifest (parsed, required fields, and
# consistent with each other, the Containerfile and the ConfigMap's mtastsd.ini), the
# Containerfile's build stage (build-steps.sh --dry-run; the real run when the build
# packages are installed), the record publishers on a fixed sample with exact output,
# the certbot/lego deploy hook, shellcheck. With the binary, also for real: the
# ConfigMap's mtastsd.ini is checked and served with certificates laid out as the
# Kubernetes projected volume and the deploy hook make them, the Containerfile's
# HEALTHCHECK command is run against the admin listener (also after a SIGHUP reload, which
# must be logged and take effect), the binary's libraries are checked against the runtime
# stage, and the publishers run on its real records.
#
# Needs python3 with PyYAML (Debian: python3-yaml). A check that cannot run here (no
# binary given; systemd-analyze, systemd-sysusers, shellcheck, certtool or the build
# packages missing or unusable) is skipped: every other check still runs, and the script
# then exits 77 (skip) listing what did not run, never 0.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

root=${1:?usage: test-deploy.sh SOURCE_ROOT [MTASTSD_BINARY]}
bin=${2:-}
root=$(cd "$root" && pwd)
deploy=$root/deploy
[[ -d $deploy ]] || { echo "test-deploy: no $deploy" >&2; exit 1; }
[[ -z $bin || -x $bin ]] || { echo "test-deploy: $bin is not executable" >&2; exit 1; }

# the server started below is stopped at exit, and must end cleanly (lib.sh)
make_tmp deploy
trap 'echo "test-deploy: FAILED: unexpected error at line $LINENO: $BASH_COMMAND" >&2' ERR

passed=0
skipped=()
ok() {
	passed=$((passed + 1))
	echo "ok $passed - $*"
}
fail() {
	echo "test-deploy: FAILED: $*" >&2
	echo "$passed passed, 1 failed"
	exit 1
}
# skip WHAT: a check that cannot run here; the script ends with exit 77 (after the others).
skip() {
	skipped+=("$*")
	echo "# SKIP $*"
}

# A python3 with PyYAML (the pyenv one or Debian's).
py=
for p in python3 /usr/bin/python3; do
	if command -v "$p" >/dev/null && "$p" -c 'import yaml' 2>/dev/null; then
		py=$p
		break
	fi
done
[[ -n $py ]] || fail "python3 with PyYAML is needed (Debian: apt-get install python3-yaml)"

############################################################################## systemd
unit=$deploy/systemd/mtastsd.service
dropin=$deploy/systemd/mtastsd-root.conf
[[ -f $unit && -f $dropin ]] || fail "missing $unit or $dropin"

# Strict parse of the unit and the drop-in: always, whatever systemd-analyze says.
"$py" - "$unit" "$dropin" <<'EOF' || fail "systemd unit: required settings (see above)"
import re, sys

def parse(path):
    sections, cur, errors = {}, None, []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip()[0] in "#;":
                continue
            if line.endswith("\\"):
                errors.append(f"{path}:{n}: continuation lines are not used here")
                continue
            m = re.fullmatch(r"\[([A-Za-z]+)\]", line)
            if m:
                cur = m.group(1)
                sections.setdefault(cur, [])
                continue
            m = re.fullmatch(r"([A-Za-z][A-Za-z0-9]*)=(.*)", line)
            if not m or cur is None:
                errors.append(f"{path}:{n}: not KEY=VALUE in a section: {line!r}")
                continue
            sections[cur].append((m.group(1), m.group(2)))
    return sections, errors

def values(sec, key):
    out = []
    for k, v in sec:
        if k == key:
            out = [] if v == "" else out + [v]
    return out

def one(sec, key):
    v = values(sec, key)
    return v[-1] if v else None

unit, uerr = parse(sys.argv[1])
drop, derr = parse(sys.argv[2])
errors = uerr + derr
s = unit.get("Service", [])
for sec in ("Unit", "Service", "Install"):
    if sec not in unit:
        errors.append(f"unit: no [{sec}] section")
want = {
    "User": "mtastsd", "Group": "mtastsd", "NoNewPrivileges": "yes",
    "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
    "PrivateDevices": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes", "ProtectClock": "yes",
    "ProtectHostname": "yes", "RestrictNamespaces": "yes", "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes", "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes",
    "SystemCallArchitectures": "native", "UMask": "0077", "StateDirectory": "mtastsd",
    "ConfigurationDirectory": "mtastsd", "Restart": "on-failure", "LimitNOFILE": "65536",
    "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
    "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
    "ExecStartPre": "/usr/bin/mtastsd check -c /etc/mtastsd/mtastsd.ini",
    "ExecStart": "/usr/bin/mtastsd serve -c /etc/mtastsd/mtastsd.ini",
    "ExecReload": "/bin/kill -HUP $MAINPID",
}
for k, v in want.items():
    if one(s, k) != v:
        errors.append(f"unit: [Service] {k}={one(s, k)!r}, want {v!r}")
if one(s, "Type") not in ("exec", "simple"):
    errors.append("unit: Type= must be exec or simple")
if set(one(s, "RestrictAddressFamilies").split() if one(s, "RestrictAddressFamilies") else []) != {"AF_INET", "AF_INET6", "AF_UNIX"}:
    errors.append("unit: RestrictAddressFamilies= must be AF_INET AF_INET6 AF_UNIX")
scf = values(s, "SystemCallFilter")
if "@system-service" not in scf or not any(v.startswith("~") and "@privileged" in v and "@resources" in v for v in scf):
    errors.append("unit: SystemCallFilter= must allow @system-service and deny ~@privileged @resources")
d = drop.get("Service", [])
if list(drop) != ["Service"]:
    errors.append("drop-in: only a [Service] section")
for k in ("User", "Group", "AmbientCapabilities", "StateDirectory"):
    if values(d, k):
        errors.append(f"drop-in: {k}= must be reset to empty (start as root, no ambient caps)")
caps = set((one(d, "CapabilityBoundingSet") or "").split())
if caps != {"CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"}:
    errors.append("drop-in: CapabilityBoundingSet= must be CAP_NET_BIND_SERVICE CAP_SETUID CAP_SETGID")
if one(d, "ReadWritePaths") != "/var/lib/mtastsd":
    errors.append("drop-in: ReadWritePaths=/var/lib/mtastsd (StateDirectory= is reset)")
if any("@privileged" in v for v in values(d, "SystemCallFilter")):
    errors.append("drop-in: SystemCallFilter= must not deny @privileged (setuid after bind)")
for e in errors:
    print(e, file=sys.stderr)
sys.exit(1 if errors else 0)
EOF
ok "systemd unit and drop-in: strict parse, every required setting"

# systemd-analyze verify, where it works in this environment (it needs no running
# systemd, but it may be missing or unable to load units, e.g. in some containers).
sa_works=no
sa_why=
if command -v systemd-analyze >/dev/null; then
	mkdir -p "$tmp/sa-probe"
	printf '[Unit]\nDescription=probe\n[Service]\nExecStart=/bin/true\n' >"$tmp/sa-probe/probe.service"
	if out=$(systemd-analyze verify "$tmp/sa-probe/probe.service" 2>&1) && [[ -z $out ]]; then
		sa_works=yes
	else
		sa_why="systemd-analyze cannot verify units here: $out"
	fi
else
	sa_why="systemd-analyze not installed"
fi
if [[ $sa_works == yes ]]; then
	exe=${bin:-/bin/true}
	mkdir -p "$tmp/sa/mtastsd.service.d"
	sed "s|/usr/bin/mtastsd|$exe|g" "$unit" >"$tmp/sa/mtastsd.service"
	out=$(systemd-analyze verify "$tmp/sa/mtastsd.service" 2>&1) ||
		fail "systemd-analyze verify mtastsd.service: $out"
	[[ -z $out ]] || fail "systemd-analyze verify mtastsd.service warns: $out"
	cp "$dropin" "$tmp/sa/mtastsd.service.d/root.conf"
	out=$(SYSTEMD_UNIT_PATH="$tmp/sa:" systemd-analyze verify "$tmp/sa/mtastsd.service" 2>&1) ||
		fail "systemd-analyze verify with mtastsd-root.conf: $out"
	[[ -z $out ]] || fail "systemd-analyze verify with mtastsd-root.conf warns: $out"
	ok "systemd-analyze verify: unit alone and with the root drop-in (ExecStart=$exe)"
	rm -r "$tmp/sa/mtastsd.service.d"
	if exposure=$(systemd-analyze security --offline=yes "$tmp/sa/mtastsd.service" 2>&1 | tail -n 1) &&
		[[ $exposure =~ level\ for\ mtastsd.service:\ ([0-9]+)\.([0-9]) ]]; then
		level=$((BASH_REMATCH[1] * 10 + BASH_REMATCH[2]))
		[[ $level -le 30 ]] || fail "systemd-analyze security: $exposure (want <= 3.0)"
		ok "systemd-analyze security: $exposure"
	else
		skip "systemd-analyze security --offline: not available here: $exposure"
	fi
else
	skip "systemd-analyze verify ($sa_why; the strict parse above ran)"
fi

# sysusers.d and tmpfiles.d, applied to a scratch root where the tools exist.
grep -qx 'u mtastsd - "MTA-STS policy server" /var/lib/mtastsd' "$deploy/systemd/mtastsd.sysusers" ||
	fail "mtastsd.sysusers: want the line u mtastsd - \"MTA-STS policy server\" /var/lib/mtastsd"
grep -Eq '^d /var/lib/mtastsd +0750 mtastsd +mtastsd ' "$deploy/systemd/mtastsd.tmpfiles" ||
	fail "mtastsd.tmpfiles: /var/lib/mtastsd 0750 mtastsd mtastsd"
grep -Eq '^d /etc/mtastsd/certs +0750 root +mtastsd ' "$deploy/systemd/mtastsd.tmpfiles" ||
	fail "mtastsd.tmpfiles: /etc/mtastsd/certs 0750 root mtastsd"
if command -v systemd-sysusers >/dev/null; then
	sysroot=$tmp/sysroot
	mkdir -p "$sysroot/etc"
	systemd-sysusers --root="$sysroot" "$deploy/systemd/mtastsd.sysusers" >/dev/null 2>&1 ||
		fail "systemd-sysusers --root rejects mtastsd.sysusers"
	grep -Eq '^mtastsd:x:[0-9]+:[0-9]+:MTA-STS policy server:/var/lib/mtastsd:/usr/s?bin/nologin$' \
		"$sysroot/etc/passwd" || fail "systemd-sysusers made: $(cat "$sysroot/etc/passwd")"
	ok "systemd-sysusers: creates user mtastsd (home /var/lib/mtastsd, nologin)"
else
	skip "systemd-sysusers: not installed (the sysusers line is checked as text only)"
fi
ok "sysusers.d and tmpfiles.d lines"

########################################################################### Kubernetes
"$py" - "$deploy" <<'EOF' || fail "Kubernetes manifests (see above)"
import configparser, glob, json, os, re, sys
import yaml

deploy = sys.argv[1]
kdir = os.path.join(deploy, "kubernetes")
errors = []
def err(msg):
    errors.append(msg)

docs = {}
for path in sorted(glob.glob(os.path.join(kdir, "*.yaml"))):
    name = os.path.basename(path)
    try:
        with open(path) as f:
            docs[name] = [d for d in yaml.safe_load_all(f) if d is not None]
    except yaml.YAMLError as e:
        print(f"{name}: does not parse: {e}", file=sys.stderr)
        sys.exit(1)
    if not docs[name]:
        err(f"{name}: empty")
    for d in docs[name]:
        if not isinstance(d, dict) or "apiVersion" not in d or "kind" not in d:
            err(f"{name}: a document without apiVersion/kind")
        elif d["kind"] != "Kustomization" and not d.get("metadata", {}).get("name"):
            err(f"{name}: {d['kind']} without metadata.name")

def objs(kind):
    return [d for ds in docs.values() for d in ds if isinstance(d, dict) and d.get("kind") == kind]

def single(kind):
    o = objs(kind)
    if len(o) != 1:
        err(f"want exactly one {kind}, found {len(o)}")
        return {}
    return o[0]

# kustomization lists every other file, and only existing ones
kust = single("Kustomization")
res = kust.get("resources", [])
if sorted(res) != sorted(n for n in docs if n != "kustomization.yaml"):
    err(f"kustomization.yaml resources {res} != the other yaml files {sorted(docs)}")

ns = single("Namespace").get("metadata", {}).get("name")
for ds in docs.values():
    for d in ds:
        if d.get("kind") in ("Namespace", "ClusterIssuer", "Kustomization"):
            continue
        if d.get("metadata", {}).get("namespace") != ns:
            err(f"{d['kind']} {d['metadata'].get('name')}: namespace is not {ns}")

# the Containerfile's user and ports
with open(os.path.join(deploy, "container", "Containerfile")) as f:
    cf = f.read()
m = re.search(r"^USER (\d+)(?::(\d+))?$", cf, re.M)
cf_uid = int(m.group(1)) if m else None
if cf_uid is None or cf_uid == 0:
    err("Containerfile: USER must be a numeric non-root uid")
cf_expose = set(re.search(r"^EXPOSE (.*)$", cf, re.M).group(1).split()) if re.search(r"^EXPOSE", cf, re.M) else set()
cmd = json.loads(re.search(r"^CMD (\[.*\])$", cf, re.M).group(1))

# ConfigMap with mtastsd.ini
cm = single("ConfigMap")
ini_text = cm.get("data", {}).get("mtastsd.ini")
if not ini_text:
    err("ConfigMap: no data key mtastsd.ini")
    ini_text = "[server]\n"
ini = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",),
                                comment_prefixes=("#", ";"), inline_comment_prefixes=None)
ini.optionxform = str
ini.read_string(ini_text)
srv = ini["server"] if ini.has_section("server") else {}
def port_of(addr):
    m = re.fullmatch(r"(?:\d+\.\d+\.\d+\.\d+|\[[0-9a-fA-F:]+\]):(\d+)", addr or "")
    return int(m.group(1)) if m else None
listen_port = port_of(srv.get("listen"))
admin_port = port_of(srv.get("admin_listen"))
if listen_port is None or listen_port < 1024:
    err(f"mtastsd.ini: listen must be an unprivileged address:port, not {srv.get('listen')!r}")
if admin_port is None:
    err("mtastsd.ini: admin_listen address:port is needed for the probes")
if "user" in srv:
    err("mtastsd.ini: no 'user =' in a container (already non-root)")
try:
    if int(srv.get("cert_watch", "0")) <= 0:
        err("mtastsd.ini: cert_watch must be > 0 so renewed Secrets are picked up")
except ValueError:
    err("mtastsd.ini: cert_watch is not a number")
domains = [s.split(None, 1)[1] for s in ini.sections() if s.startswith("domain ")]
if len(domains) < 2:
    err("mtastsd.ini: want a few example customer domains")
if not any(ini.has_option(f"domain {d}", "proxy") for d in domains):
    err("mtastsd.ini: want one 'proxy =' domain")
for port in (listen_port, admin_port):
    if port is not None and str(port) not in cf_expose:
        err(f"Containerfile: EXPOSE lacks {port}")

# Deployment
dep = single("Deployment")
spec = dep.get("spec", {})
tmpl = spec.get("template", {})
pod = tmpl.get("spec", {})
labels = tmpl.get("metadata", {}).get("labels", {})
if not isinstance(spec.get("replicas"), int) or spec["replicas"] < 2:
    err("Deployment: replicas must be >= 2")
sel = spec.get("selector", {}).get("matchLabels", {})
if not sel or any(labels.get(k) != v for k, v in sel.items()):
    err("Deployment: selector does not match the pod labels")
psc = pod.get("securityContext", {})
if psc.get("runAsNonRoot") is not True or psc.get("runAsUser") != cf_uid:
    err(f"Deployment: pod runAsNonRoot and runAsUser {cf_uid} (the Containerfile's USER)")
if pod.get("automountServiceAccountToken") is not False:
    err("Deployment: automountServiceAccountToken: false (mtastsd never calls the API)")
cs = pod.get("containers", [])
if len(cs) != 1:
    err("Deployment: want one container")
c = cs[0] if cs else {}
csc = c.get("securityContext", {})
if csc.get("readOnlyRootFilesystem") is not True:
    err("Deployment: readOnlyRootFilesystem: true")
if csc.get("allowPrivilegeEscalation") is not False:
    err("Deployment: allowPrivilegeEscalation: false")
if "ALL" not in csc.get("capabilities", {}).get("drop", []):
    err("Deployment: capabilities drop ALL")
if csc.get("capabilities", {}).get("add"):
    err("Deployment: no added capabilities")
if c.get("args", cmd) != cmd:
    err(f"Deployment: args {c.get('args')} differ from the Containerfile CMD {cmd}")
cports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
def resolve(port):
    return cports.get(port) if isinstance(port, str) else port
if listen_port not in cports.values() or admin_port not in cports.values():
    err(f"Deployment: containerPorts {cports} must include {listen_port} and {admin_port}")
for probe in ("readinessProbe", "livenessProbe"):
    hg = c.get(probe, {}).get("httpGet", {})
    if hg.get("path") != "/healthz" or resolve(hg.get("port")) != admin_port:
        err(f"Deployment: {probe} must be httpGet /healthz on port {admin_port}")
res = c.get("resources", {})
if not res.get("requests") or not res.get("limits", {}).get("memory"):
    err("Deployment: resources requests and a memory limit")
vols = {v.get("name"): v for v in pod.get("volumes", [])}
mounts = {m.get("mountPath"): m for m in c.get("volumeMounts", [])}
m = mounts.get("/etc/mtastsd/mtastsd.ini")
if m is None and "/etc/mtastsd" in mounts:
    m = mounts["/etc/mtastsd"]
if m is None:
    err("Deployment: mtastsd.ini not mounted at /etc/mtastsd/mtastsd.ini")
else:
    v = vols.get(m.get("name"), {})
    if v.get("configMap", {}).get("name") != cm.get("metadata", {}).get("name"):
        err("Deployment: the config mount is not the ConfigMap")
    if m.get("subPath") not in (None, "mtastsd.ini"):
        err("Deployment: config subPath must be mtastsd.ini")
certs_dir = srv.get("certs")
m = mounts.get(certs_dir)
projected = {}
if m is None or "projected" not in vols.get(m.get("name"), {}):
    err(f"Deployment: a projected volume of the cert Secrets at certs = {certs_dir}")
elif m.get("subPath"):
    err("Deployment: no subPath for certs (subPath mounts are never updated)")
else:
    for src in vols[m["name"]]["projected"].get("sources", []):
        sec = src.get("secret")
        if not sec:
            continue
        items = {i.get("key"): i.get("path") for i in sec.get("items", [])}
        crt, key = items.get("tls.crt", ""), items.get("tls.key", "")
        d1, f1 = os.path.split(crt)
        d2, f2 = os.path.split(key)
        if (f1, f2) != ("fullchain.pem", "privkey.pem") or d1 != d2 or not d1 or "/" in d1:
            err(f"Deployment: Secret {sec.get('name')}: tls.crt/tls.key -> SUBDIR/fullchain.pem, SUBDIR/privkey.pem")
        projected[sec.get("name")] = d1
state = srv.get("state_dir")
m = mounts.get(state)
if m is None or "emptyDir" not in vols.get(m.get("name"), {}):
    err(f"Deployment: state_dir {state} must be an emptyDir mount (read-only root)")

# Service
svcs = objs("Service")
lb = [s for s in svcs if s.get("spec", {}).get("type") == "LoadBalancer"]
if len(lb) != 1:
    err("Service: want one of type LoadBalancer")
else:
    sp = lb[0]["spec"]
    p443 = [p for p in sp.get("ports", []) if p.get("port") == 443]
    if not p443 or p443[0].get("protocol", "TCP") != "TCP" or resolve(p443[0].get("targetPort")) != listen_port:
        err(f"Service: TCP 443 -> {listen_port}")
    if any(p.get("port") == admin_port or resolve(p.get("targetPort")) == admin_port for p in sp.get("ports", [])):
        err("Service: the LoadBalancer must not expose the admin port")
    if sp.get("selector") != sel:
        err("Service: selector differs from the Deployment's")

# NetworkPolicy: the policy port open to all, the admin port only to named peers
np = single("NetworkPolicy").get("spec", {})
if np.get("podSelector", {}).get("matchLabels") != sel or "Ingress" not in np.get("policyTypes", []):
    err("NetworkPolicy: Ingress for the Deployment's pods")
rules = np.get("ingress", [])
def rule_ports(r):
    return {resolve(p.get("port")) for p in r.get("ports", [])}
if not any(listen_port in rule_ports(r) and not r.get("from") for r in rules):
    err(f"NetworkPolicy: port {listen_port} open to every source")
admin_rules = [r for r in rules if admin_port in rule_ports(r) or not r.get("ports")]
if not admin_rules or any(not r.get("from") for r in admin_rules):
    err(f"NetworkPolicy: port {admin_port} only from named peers (never from everywhere)")

# PodDisruptionBudget
pdb = single("PodDisruptionBudget").get("spec", {})
if pdb.get("minAvailable") != 2 or pdb.get("selector", {}).get("matchLabels") != sel:
    err("PodDisruptionBudget: minAvailable 2 with the Deployment's selector")
if isinstance(spec.get("replicas"), int) and spec["replicas"] <= 2:
    err("Deployment: replicas must exceed the PDB's minAvailable, or nodes never drain")

# Certificates: one per domain, each projected into the Deployment
issuers = {o["metadata"]["name"] for o in objs("ClusterIssuer")}
certs = objs("Certificate")
if not certs:
    err("no cert-manager Certificate")
by_host = {}
for o in certs:
    cs_ = o.get("spec", {})
    n = o["metadata"]["name"]
    if not cs_.get("dnsNames") or not cs_.get("secretName"):
        err(f"Certificate {n}: dnsNames and secretName")
        continue
    ir = cs_.get("issuerRef", {})
    if ir.get("kind") != "ClusterIssuer" or ir.get("name") not in issuers:
        err(f"Certificate {n}: issuerRef to the ClusterIssuer in certificates.yaml")
    for h in cs_["dnsNames"]:
        if not h.startswith("mta-sts."):
            err(f"Certificate {n}: {h} is not an mta-sts.<domain> name")
        by_host[h] = cs_["secretName"]
    if cs_["secretName"] not in projected:
        err(f"Certificate {n}: Secret {cs_['secretName']} is not projected in the Deployment")
for ci in objs("ClusterIssuer"):
    solvers = ci.get("spec", {}).get("acme", {}).get("solvers", [])
    if not solvers or not all("dns01" in s for s in solvers):
        err("ClusterIssuer: DNS-01 solvers only (HTTP-01 cannot reach mtastsd's TCP 443)")
for d in domains:
    if f"mta-sts.{d}" not in by_host:
        err(f"mtastsd.ini domain {d}: no Certificate for mta-sts.{d}")

for e in errors:
    print(e, file=sys.stderr)
if not errors:
    print(f"# {sum(len(v) for v in docs.values())} objects in {len(docs)} files, "
          f"{len(domains)} domains, {len(certs)} certificates")
sys.exit(1 if errors else 0)
EOF
ok "Kubernetes manifests parse and agree (Deployment, Service, PDB, ConfigMap, Certificates, Containerfile)"

############################################################################ container
cf=$deploy/container/Containerfile
steps=$("$deploy/container/build-steps.sh" --dry-run) || fail "build-steps.sh --dry-run failed"
expect_step() {
	grep -qF -- "$1" <<<"$steps" || fail "Containerfile build stage lacks: $1 (build-steps.sh --dry-run printed: $steps)"
}
expect_step "FROM docker.io/library/debian:12 AS build"
for p in build-essential meson ninja-build pkg-config libmicrohttpd-dev libgnutls28-dev \
	libinih-dev libcurl4-gnutls-dev libc-ares-dev libpsl-dev; do
	grep -qE "^RUN .*apt-get install .* $p( |$)" <<<"$steps" || fail "build stage does not install $p"
done
expect_step "meson setup build --buildtype=release"
expect_step "-Dtests=false"
expect_step "meson compile -C build"
expect_step "meson install -C build --destdir"
ok "Containerfile build stage (build-steps.sh --dry-run): Debian 12, build deps, meson release build"

grep -qx 'FROM docker.io/library/debian:12-slim' "$cf" || fail "Containerfile: runtime stage FROM debian:12-slim"
grep -qx 'USER 10001:10001' "$cf" || fail "Containerfile: USER 10001"
grep -qx 'EXPOSE 8443 9090' "$cf" || fail "Containerfile: EXPOSE 8443 9090"
grep -qx 'ENTRYPOINT \["/usr/bin/mtastsd"\]' "$cf" || fail "Containerfile: ENTRYPOINT mtastsd"
grep -qx 'CMD \["serve", "-c", "/etc/mtastsd/mtastsd.ini"\]' "$cf" || fail "Containerfile: CMD serve -c"
grep -q '^HEALTHCHECK ' "$cf" || fail "Containerfile: HEALTHCHECK"
ok "Containerfile runtime stage: debian:12-slim, USER 10001, EXPOSE, HEALTHCHECK, ENTRYPOINT/CMD"

# The real build stage: cheap (seconds) where the build packages are installed, as in CI.
missing=()
for p in build-essential meson ninja-build pkg-config libmicrohttpd-dev libgnutls28-dev \
	libinih-dev libcurl4-gnutls-dev libc-ares-dev libpsl-dev; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
	out=$("$deploy/container/build-steps.sh" 2>&1) || fail "build-steps.sh (real run): $out"
	grep -q '^build stage OK: mtastsd ' <<<"$out" || fail "build-steps.sh: no 'build stage OK': $out"
	ok "build-steps.sh: the build stage really builds mtastsd here and the runtime stage has its libraries"
else
	skip "build-steps.sh real run: build packages missing: ${missing[*]}"
fi
if [[ -n $bin ]]; then
	if readelf -d "$bin" 2>/dev/null | grep -Eq 'NEEDED.*lib(asan|ubsan|tsan|lsan)'; then
		# A sanitizer build also links the sanitizer runtimes, which the runtime stage
		# rightly does not install: the check must refuse it for those, and for nothing
		# else (every other library comes from a package the runtime stage installs).
		if out=$("$deploy/container/build-steps.sh" --check-runtime "$bin" 2>&1); then
			fail "runtime stage vs the sanitizer build $bin: the sanitizer runtimes were accepted: $out"
		fi
		grep -Eq '^  lib(asan|ubsan|tsan|lsan)\.so[^ ]* .*not installed by the runtime stage' <<<"$out" ||
			fail "runtime stage vs the sanitizer build $bin: the sanitizer runtimes are not named: $out"
		others=$(grep -E '^  [^ ]+ .*(not installed by the runtime stage|no Debian package owns it|not found by ldd)' <<<"$out" |
			grep -Ev '^  lib(asan|ubsan|tsan|lsan)\.so' || true)
		[[ -z $others ]] || fail "runtime stage lacks libraries of $bin: $others"
		ok "runtime stage installs every library $bin links but the sanitizer runtimes (named by the check)"
	else
		out=$("$deploy/container/build-steps.sh" --check-runtime "$bin" 2>&1) ||
			fail "runtime stage vs $bin: $out"
		ok "runtime stage installs every library $bin links"
	fi
fi

########################################################################## publishers
dnsep=$deploy/publish/records-to-dnsendpoint.py
nsupd=$deploy/publish/records-to-nsupdate.py
for s in "$dnsep" "$nsupd"; do
	[[ -x $s ]] || fail "$s: not executable"
	"$py" "$s" --help | grep -q '^usage: ' || fail "$s --help"
done

# The sample: the shapes mtastsd prints (static, delegated, TLS-RPT only, no records),
# and a TLS-RPT value longer than one 255-byte TXT string.
long_rua="https://tlsrpt.example.org/$(printf 'x%.0s' {1..280})"
cat >"$tmp/sample.json" <<EOF
[
  {
    "domain": "example.com",
    "mode": "enforce",
    "id": "0123456789abcdef0123456789abcdef",
    "policy": "version: STSv1\u000d\u000amode: enforce\u000d\u000amx: mail.example.com\u000d\u000amax_age: 604800\u000d\u000a",
    "proxy": null,
    "records": [
      {"name": "_mta-sts.example.com.", "type": "TXT", "ttl": 3600, "value": "v=STSv1; id=0123456789abcdef0123456789abcdef"},
      {"name": "_smtp._tls.example.com.", "type": "TXT", "ttl": 86400, "value": "v=TLSRPTv1; rua=mailto:a@example.com,https://r.example.net/x"}
    ]
  },
  {
    "domain": "customer.example",
    "mode": null,
    "id": "abc123",
    "policy": null,
    "proxy": "provider.example",
    "records": [
      {"name": "_mta-sts.customer.example.", "type": "CNAME", "ttl": 3600, "value": "_mta-sts.provider.example."}
    ]
  },
  {
    "domain": "new.example",
    "mode": null,
    "id": null,
    "policy": null,
    "proxy": null,
    "records": [
      {"name": "_smtp._tls.new.example.", "type": "TXT", "ttl": 86400, "value": "v=TLSRPTv1; rua=$long_rua"}
    ]
  },
  {"domain": "empty.example", "mode": null, "id": null, "policy": null, "proxy": null, "records": []}
]
EOF

long_txt="v=TLSRPTv1; rua=$long_rua"
cat >"$tmp/want-dnsendpoint.yaml" <<EOF
---
apiVersion: externaldns.k8s.io/v1alpha1
kind: DNSEndpoint
metadata:
  name: "mtastsd-example.com"
  namespace: "mtastsd"
  labels:
    app.kubernetes.io/managed-by: "mtastsd-records"
  annotations:
    mtastsd/domain: "example.com"
    mtastsd/id: "0123456789abcdef0123456789abcdef"
spec:
  endpoints:
    - dnsName: "_mta-sts.example.com"
      recordType: "TXT"
      recordTTL: 3600
      targets:
        - "v=STSv1; id=0123456789abcdef0123456789abcdef"
    - dnsName: "_smtp._tls.example.com"
      recordType: "TXT"
      recordTTL: 86400
      targets:
        - "v=TLSRPTv1; rua=mailto:a@example.com,https://r.example.net/x"
---
apiVersion: externaldns.k8s.io/v1alpha1
kind: DNSEndpoint
metadata:
  name: "mtastsd-customer.example"
  namespace: "mtastsd"
  labels:
    app.kubernetes.io/managed-by: "mtastsd-records"
  annotations:
    mtastsd/domain: "customer.example"
    mtastsd/id: "abc123"
spec:
  endpoints:
    - dnsName: "_mta-sts.customer.example"
      recordType: "CNAME"
      recordTTL: 3600
      targets:
        - "_mta-sts.provider.example"
---
apiVersion: externaldns.k8s.io/v1alpha1
kind: DNSEndpoint
metadata:
  name: "mtastsd-new.example"
  namespace: "mtastsd"
  labels:
    app.kubernetes.io/managed-by: "mtastsd-records"
  annotations:
    mtastsd/domain: "new.example"
spec:
  endpoints:
    - dnsName: "_smtp._tls.new.example"
      recordType: "TXT"
      recordTTL: 86400
      targets:
        - "$long_txt"
---
apiVersion: externaldns.k8s.io/v1alpha1
kind: DNSEndpoint
metadata:
  name: "mtastsd-empty.example"
  namespace: "mtastsd"
  labels:
    app.kubernetes.io/managed-by: "mtastsd-records"
  annotations:
    mtastsd/domain: "empty.example"
spec:
  endpoints: []
EOF

"$py" "$dnsep" --namespace mtastsd "$tmp/sample.json" >"$tmp/got-dnsendpoint.yaml" ||
	fail "records-to-dnsendpoint.py on the sample"
diff -u "$tmp/want-dnsendpoint.yaml" "$tmp/got-dnsendpoint.yaml" >&2 ||
	fail "records-to-dnsendpoint.py: output differs from the expected lines (diff above)"
"$py" "$dnsep" --namespace mtastsd <"$tmp/sample.json" | cmp -s - "$tmp/got-dnsendpoint.yaml" ||
	fail "records-to-dnsendpoint.py: stdin and file input differ"
"$py" - "$tmp/got-dnsendpoint.yaml" "$long_txt" <<'EOF' || fail "records-to-dnsendpoint.py: output is not the YAML it claims"
import sys, yaml
docs = list(yaml.safe_load_all(open(sys.argv[1])))
assert [d["metadata"]["name"] for d in docs] == ["mtastsd-example.com", "mtastsd-customer.example", "mtastsd-new.example", "mtastsd-empty.example"]
assert all(d["apiVersion"] == "externaldns.k8s.io/v1alpha1" and d["kind"] == "DNSEndpoint" for d in docs)
assert docs[0]["spec"]["endpoints"][0] == {"dnsName": "_mta-sts.example.com", "recordType": "TXT", "recordTTL": 3600, "targets": ["v=STSv1; id=0123456789abcdef0123456789abcdef"]}
assert docs[2]["spec"]["endpoints"][0]["targets"] == [sys.argv[2]]
assert docs[3]["spec"]["endpoints"] == []
EOF
ok "records-to-dnsendpoint.py: exact YAML for the sample (TXT, CNAME, long TXT, no records), parses back"

chunk1=${long_txt:0:255}
chunk2=${long_txt:255}
cat >"$tmp/want-nsupdate.txt" <<EOF
server 192.0.2.53 5353
; example.com
zone example.
update delete _mta-sts.example.com. TXT
update delete _mta-sts.example.com. CNAME
update add _mta-sts.example.com. 3600 TXT "v=STSv1; id=0123456789abcdef0123456789abcdef"
update delete _smtp._tls.example.com. TXT
update delete _smtp._tls.example.com. CNAME
update add _smtp._tls.example.com. 86400 TXT "v=TLSRPTv1; rua=mailto:a@example.com,https://r.example.net/x"
send
; customer.example
zone example.
update delete _mta-sts.customer.example. CNAME
update delete _mta-sts.customer.example. TXT
update add _mta-sts.customer.example. 3600 CNAME _mta-sts.provider.example.
send
; new.example
zone example.
update delete _smtp._tls.new.example. TXT
update delete _smtp._tls.new.example. CNAME
update add _smtp._tls.new.example. 86400 TXT "$chunk1" "$chunk2"
send
; empty.example
; no records to publish
EOF
"$py" "$nsupd" --server 192.0.2.53:5353 --zone example "$tmp/sample.json" >"$tmp/got-nsupdate.txt" ||
	fail "records-to-nsupdate.py on the sample"
diff -u "$tmp/want-nsupdate.txt" "$tmp/got-nsupdate.txt" >&2 ||
	fail "records-to-nsupdate.py: output differs from the expected lines (diff above)"
grep -q '^$' "$tmp/got-nsupdate.txt" && fail "records-to-nsupdate.py: a blank line (nsupdate sends on it)"
[[ $("$py" "$nsupd" <"$tmp/sample.json" | head -n 2) == $'; example.com\nupdate delete _mta-sts.example.com. TXT' ]] ||
	fail "records-to-nsupdate.py: without --server/--zone the script starts with the first domain"
[[ $("$py" "$nsupd" --server '[2001:db8::53]:53' <"$tmp/sample.json" | head -n 1) == 'server 2001:db8::53 53' ]] ||
	fail "records-to-nsupdate.py: --server [IPv6]:port"
ok "records-to-nsupdate.py: exact script for the sample (delete+add, TXT split at 255 bytes, send per domain)"

# bad input and the message it must get, after "records-to-X: stdin: "
bad_inputs=('{}' '[{"domain": "x.example", "records": [{"name": "a.", "type": "MX", "ttl": 1, "value": "x"}]}]' 'not json')
bad_messages=('expected a JSON array of domains' "x.example: unsupported record type 'MX'" 'not JSON: ')
for s in "$dnsep" "$nsupd"; do
	for i in "${!bad_inputs[@]}"; do
		if out=$("$py" "$s" <<<"${bad_inputs[$i]}" 2>&1); then
			fail "$(basename "$s") accepted bad input: ${bad_inputs[$i]}"
		fi
		want="$(basename "$s" .py): stdin: ${bad_messages[$i]}"
		[[ $out == "$want"* ]] || fail "$(basename "$s") on ${bad_inputs[$i]}: '$out', want '$want...'"
	done
done
ok "publishers reject malformed input with a message and exit 1"

######################################################################### deploy hook
hook=$deploy/certbot/mtastsd-deploy-hook.sh
[[ -x $hook ]] || fail "$hook: not executable"
gen=$tmp/gen
have_certs=no
if command -v certtool >/dev/null && [[ -x $root/certs-example/make-certs.sh ]]; then
	"$root/certs-example/make-certs.sh" -o "$gen" customer1.example customer2.example \
		customer3.example customer4.example >/dev/null 2>&1 || fail "make-certs.sh failed"
	have_certs=yes
else
	mkdir -p "$gen"
	for i in 1 2 3 4; do
		echo "cert $i" >"$gen/mta-sts.customer$i.example.crt"
		echo "key $i" >"$gen/mta-sts.customer$i.example.key"
	done
	skip "deploy hook with real certificates, and every check of the binary: certtool missing (placeholder files used)"
fi
certs=$tmp/certs
mkdir -p "$certs"
for run in 1 2 3; do
	MTASTSD_CERTS=$certs MTASTSD_GROUP=$(id -gn) "$hook" mta-sts.customer1.example \
		"$gen/mta-sts.customer1.example.crt" "$gen/mta-sts.customer1.example.key" >/dev/null ||
		fail "deploy hook, run $run"
done
# certbot's interface: RENEWED_LINEAGE=.../live/NAME with fullchain.pem and privkey.pem
mkdir -p "$tmp/live/mta-sts.customer2.example"
cp "$gen/mta-sts.customer2.example.crt" "$tmp/live/mta-sts.customer2.example/fullchain.pem"
cp "$gen/mta-sts.customer2.example.key" "$tmp/live/mta-sts.customer2.example/privkey.pem"
RENEWED_LINEAGE=$tmp/live/mta-sts.customer2.example MTASTSD_CERTS=$certs MTASTSD_GROUP=$(id -gn) \
	"$hook" >/dev/null || fail "deploy hook with RENEWED_LINEAGE (certbot)"
link=$(readlink "$certs/mta-sts.customer1.example") || fail "deploy hook: NAME is not a symlink"
[[ $link == .mta-sts.customer1.example.* && -d $certs/$link ]] || fail "deploy hook: NAME -> $link"
n=$(find "$certs" -maxdepth 1 -name '.mta-sts.customer1.example.*' | wc -l)
[[ $n -eq 2 ]] || fail "deploy hook: want the current and the previous pair after 3 runs, found $n"
for f in fullchain.pem privkey.pem; do
	for d in customer1 customer2; do
		p=$certs/mta-sts.$d.example/$f
		[[ $(stat -L -c %a "$p") == 640 ]] || fail "deploy hook: $p mode $(stat -L -c %a "$p"), want 640"
	done
done
cmp -s "$certs/mta-sts.customer2.example/privkey.pem" "$gen/mta-sts.customer2.example.key" ||
	fail "deploy hook: privkey.pem is not the given key"
if out=$(MTASTSD_CERTS=$certs "$hook" 'bad/name' /dev/null /dev/null 2>&1); then
	fail "deploy hook accepted a bad name"
fi
[[ $out == "mtastsd-deploy-hook: bad certificate name 'bad/name'" ]] ||
	fail "deploy hook on a bad name: '$out', want: mtastsd-deploy-hook: bad certificate name 'bad/name'"
ok "deploy hook: symlink-swapped pairs, mode 0640, previous pair kept, certbot lineage, bad input refused"

################################################################ with the real binary
if [[ -n $bin && $have_certs == yes ]]; then
	# Customers 3 and 4 laid out as a Kubernetes projected volume (..data symlink);
	# customers 1 and 2 come from the deploy hook above.
	data=$certs/..2024_01_01_00_00_00.000000000
	for i in 3 4; do
		mkdir -p "$data/mta-sts.customer$i.example"
		install -m 0440 "$gen/mta-sts.customer$i.example.crt" "$data/mta-sts.customer$i.example/fullchain.pem"
		install -m 0440 "$gen/mta-sts.customer$i.example.key" "$data/mta-sts.customer$i.example/privkey.pem"
	done
	ln -s "$(basename "$data")" "$certs/..data"
	for i in 3 4; do ln -s "..data/mta-sts.customer$i.example" "$certs/mta-sts.customer$i.example"; done

	read -r port admin_port < <("$py" -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
	mkdir -p "$tmp/state"
	"$py" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["data"]["mtastsd.ini"], end="")' \
		"$deploy/kubernetes/configmap.yaml" |
		sed -e "s|^listen = .*|listen = 127.0.0.1:$port|" \
			-e "s|^admin_listen = .*|admin_listen = 127.0.0.1:$admin_port|" \
			-e "s|^certs = .*|certs = $certs|" \
			-e "s|^state_dir = .*|state_dir = $tmp/state|" >"$tmp/mtastsd.ini"
	out=$("$bin" check -c "$tmp/mtastsd.ini" 2>&1) ||
		fail "mtastsd check on the ConfigMap's mtastsd.ini: $out"
	grep -qx 'configuration OK' <<<"$out" || fail "mtastsd check printed: $out"
	ok "mtastsd check: the ConfigMap's mtastsd.ini with projected-volume and deploy-hook certificates"

	"$bin" records -c "$tmp/mtastsd.ini" --format json >"$tmp/records.json" 2>"$tmp/records.err" ||
		fail "mtastsd records: $(cat "$tmp/records.err")"
	"$py" "$dnsep" "$tmp/records.json" >"$tmp/real-dnsendpoint.yaml" || fail "records-to-dnsendpoint.py on real records"
	"$py" "$nsupd" "$tmp/records.json" >"$tmp/real-nsupdate.txt" || fail "records-to-nsupdate.py on real records"
	"$py" - "$tmp/records.json" "$tmp/real-dnsendpoint.yaml" "$tmp/real-nsupdate.txt" <<'EOF' ||
import json, sys, yaml
recs = json.load(open(sys.argv[1]))
eps = list(yaml.safe_load_all(open(sys.argv[2])))
ns = open(sys.argv[3]).read().splitlines()
assert [d["domain"] for d in recs] == ["customer1.example", "customer2.example", "customer3.example", "customer4.example"], recs
assert len(eps) == 4
want = [(r["name"].rstrip("."), r["type"]) for d in recs for r in d["records"]]
got = [(e["dnsName"], e["recordType"]) for d in eps for e in d["spec"]["endpoints"]]
assert got == want, (got, want)
assert ("_mta-sts.customer4.example", "CNAME") in got
assert sum(1 for l in ns if l.startswith("update add ")) == len(want)
assert ns.count("send") == 4
EOF
		fail "publishers on the real records of the ConfigMap's config"
	ok "publishers on the real 'mtastsd records --format json' of the ConfigMap's config"

	# serve it, and run the Containerfile's HEALTHCHECK command against the admin port
	hc=$("$py" - "$deploy/container/Containerfile" <<'EOF'
import json, re, sys
text = open(sys.argv[1]).read().replace("\\\n", " ")
m = re.search(r"^HEALTHCHECK .*?\bCMD (\[.*\])\s*$", text, re.M)
cmd = json.loads(m.group(1))
assert cmd[:2] == ["/bin/bash", "-c"], cmd
print(cmd[2])
EOF
	) || fail "Containerfile: HEALTHCHECK CMD is not a JSON [\"/bin/bash\", \"-c\", ...] array"
	[[ $hc == *127.0.0.1/9090* ]] || fail "HEALTHCHECK does not probe 127.0.0.1:9090: $hc"
	if bash -c "${hc//9090/$admin_port}" 2>/dev/null; then
		fail "HEALTHCHECK succeeded with no server listening"
	fi
	start_server "$tmp/serve.log" "$bin" serve -c "$tmp/mtastsd.ini"
	healthy=no
	for _ in $(seq 1 100); do
		if bash -c "${hc//9090/$admin_port}" 2>/dev/null; then
			healthy=yes
			break
		fi
		lib_running "$server_pid" || break
		sleep 0.1
	done
	[[ $healthy == yes ]] || fail "HEALTHCHECK never passed against mtastsd serve: $(cat "$tmp/serve.log")"

	# A reload (SIGHUP) that changes customer3.example's max_age: logged with the new id,
	# counted, and served; the HEALTHCHECK still passes.
	policy_body testing 86400 mx1.provider.example >"$tmp/c3.old"
	policy_body testing 172800 mx1.provider.example >"$tmp/c3.new"
	c3_id=$(policy_id testing 172800 mx1.provider.example)
	served_c3() { # FILE: customer3.example serves exactly FILE
		curl -sS --noproxy '*' --max-time 30 --cacert "$gen/ca.crt" -o "$tmp/c3.got" \
			--resolve "mta-sts.customer3.example:$port:127.0.0.1" \
			"https://mta-sts.customer3.example:$port/.well-known/mta-sts.txt" ||
			fail "GET mta-sts.customer3.example"
		cmp -s "$1" "$tmp/c3.got" || fail "customer3.example serves $(cat -A "$tmp/c3.got"), want $(cat -A "$1")"
	}
	reloads_ok() { # the ok reloads /metrics counts
		curl -sS --noproxy '*' --max-time 30 "http://127.0.0.1:$admin_port/metrics" |
			sed -n 's/^mtastsd_reloads_total{result="ok"} //p'
	}
	served_c3 "$tmp/c3.old"
	[[ $(reloads_ok) == 0 ]] || fail "reloads counted before any: $(reloads_ok)"
	sed '/^\[domain customer3\.example\]$/,/^\[/ s/^max_age = 86400$/max_age = 172800/' \
		"$tmp/mtastsd.ini" >"$tmp/mtastsd.ini.new"
	cmp -s "$tmp/mtastsd.ini" "$tmp/mtastsd.ini.new" && fail "test bug: customer3.example's max_age not changed"
	mv -f "$tmp/mtastsd.ini.new" "$tmp/mtastsd.ini"
	from=$(log_size)
	kill -HUP "$server_pid"
	wait_log "mtastsd: reloaded $tmp/mtastsd.ini: 4 domains, 1 ids changed, 0 added, 0 removed" 30 "$from"
	wait_log "mtastsd: customer3.example: id changed to $c3_id; publish: " 5 "$from"
	[[ $(reloads_ok) == 1 ]] || fail "mtastsd_reloads_total{result=\"ok\"} is '$(reloads_ok)' after the reload, want 1"
	served_c3 "$tmp/c3.new"
	bash -c "${hc//9090/$admin_port}" || fail "HEALTHCHECK fails after SIGHUP: $(cat "$tmp/serve.log")"
	stop_server
	ok "mtastsd serve with the ConfigMap's config: the Containerfile's HEALTHCHECK passes; a SIGHUP reload is logged, counted and served, the HEALTHCHECK still passes; SIGTERM exits 0"
elif [[ -z $bin ]]; then
	skip "checks of the binary: no MTASTSD_BINARY given"
fi

########################################################################### linters
scripts=("$deploy/container/build-steps.sh" "$hook" "$root/tests/test-deploy.sh")
for s in "${scripts[@]}"; do
	bash -n "$s" || fail "bash -n $s"
done
if command -v shellcheck >/dev/null; then
	shellcheck "${scripts[@]}" >&2 || fail "shellcheck (output above)"
	ok "shellcheck: ${#scripts[@]} scripts clean"
else
	skip "shellcheck: not installed (only bash -n ran)"
fi
"$py" -c 'import ast, sys
for p in sys.argv[1:]:
    ast.parse(open(p).read(), p)' "$dnsep" "$nsupd" "$deploy/publish/mtastsd_records.py" || fail "python syntax"
ok "bash -n and python syntax"

if [[ ${#skipped[@]} -gt 0 ]]; then
	echo "$passed passed, 0 failed, ${#skipped[@]} skipped:"
	printf '  %s\n' "${skipped[@]}"
	exit 77
fi
echo "$passed passed, 0 failed"
