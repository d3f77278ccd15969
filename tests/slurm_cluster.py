"""A real one-node Slurm cluster (MUNGE, slurmctld, slurmd from Debian's packages) for tests
that launch jobs with srun; its files live under a folder the caller gives. Needs root."""
import os
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator

DAEMONS = {name: shutil.which(name) or f'/usr/sbin/{name}'
           for name in ('munged', 'slurmctld', 'slurmd')}
HAVE_SLURM = (all(os.access(path, os.X_OK) for path in DAEMONS.values())
              and shutil.which('srun') is not None and os.geteuid() == 0)
WHY_NOT = "needs root and Debian's slurmd, slurmctld, slurm-client and munge"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _write_conf(root: Path, munge_socket: Path) -> Path:
    host = socket.gethostname().split('.')[0]
    conf = root / 'slurm.conf'
    conf.write_text('\n'.join([
        'ClusterName=stvitmmtest', f'SlurmctldHost={host}(127.0.0.1)', 'SlurmUser=root',
        'SlurmdUser=root', 'AuthType=auth/munge', f'AuthInfo=socket={munge_socket}',
        f'StateSaveLocation={root}/state', f'SlurmdSpoolDir={root}/spool',
        f'SlurmctldPidFile={root}/slurmctld.pid', f'SlurmdPidFile={root}/slurmd.pid',
        f'SlurmctldLogFile={root}/log/slurmctld.log', f'SlurmdLogFile={root}/log/slurmd.log',
        f'SlurmctldPort={free_port()}', f'SlurmdPort={free_port()}',
        'ProctrackType=proctrack/linuxproc', 'TaskPlugin=task/none', 'MpiDefault=none',
        'SchedulerType=sched/builtin', 'SelectType=select/cons_tres',
        'SelectTypeParameters=CR_CPU', 'ReturnToService=2',
        f'NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} State=UNKNOWN',
        f'PartitionName=cpu Nodes={host} Default=YES MaxTime=INFINITE State=UP '
        'OverSubscribe=YES', '']))
    return conf


@contextmanager
def one_node_cluster(root: Path) -> Iterator[Dict[str, str]]:
    """Start the daemons with their files under ``root``; yield the environment for srun
    (``SLURM_CONF`` set), partition ``cpu``; stop them on exit."""
    for sub in ('munge', 'state', 'spool', 'log'):
        (root / sub).mkdir(parents=True)
    os.chmod(root / 'munge', 0o700)
    key = root / 'munge' / 'munge.key'
    key.write_bytes(os.urandom(1024))
    os.chmod(key, 0o400)
    munge_socket = root / 'munge' / 'munge.socket'
    conf = _write_conf(root, munge_socket)
    env = dict(os.environ, SLURM_CONF=str(conf))
    subprocess.run([DAEMONS['munged'], '--force', f'--key-file={key}',
                    f'--socket={munge_socket}', f'--pid-file={root}/munge/munged.pid',
                    f'--log-file={root}/log/munged.log', f'--seed-file={root}/munge/seed'],
                   check=True, timeout=60)
    subprocess.run([DAEMONS['slurmctld'], '-f', str(conf)], check=True, env=env, timeout=60)
    subprocess.run([DAEMONS['slurmd'], '-f', str(conf)], check=True, env=env, timeout=60)
    try:
        deadline = time.monotonic() + 60
        while 'idle' not in subprocess.run(['sinfo', '-h', '-o', '%t'], env=env, text=True,
                                           capture_output=True).stdout:
            assert time.monotonic() < deadline, (root / 'log' / 'slurmctld.log').read_text()
            time.sleep(1)
        yield env
    finally:
        subprocess.run(['scontrol', 'shutdown'], env=env, capture_output=True, timeout=60)
        for pid_file in ('slurmd.pid', 'slurmctld.pid', 'munge/munged.pid'):
            try:
                os.kill(int((root / pid_file).read_text()), 15)
            except (OSError, ValueError):
                pass
