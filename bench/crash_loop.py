#!/usr/bin/env python3
"""Crash loop: one client makes requests on fresh connections (bounded: 200,000 requests)
while the newest worker of a master is killed with SIGKILL N times in a row, each as soon
as the master has two workers again. Prints the number of requests, the failures, the
longest request and the longest time without a completed request.

    bench/crash_loop.py PORT MASTER_PID [KILLS=7]

Works for proton-run and for nginx (worker_processes 2, master_process on): the workers
are the master's children. Issue 12 / docs/architecture.md ("A dead worker's socket is
not left unserved") quote its numbers. A measurement, not a test.
"""
import socket, sys, time, threading, os, signal
port=int(sys.argv[1]); master=int(sys.argv[2]); kills=int(sys.argv[3]) if len(sys.argv)>3 else 7
def children():
    try: return sorted(int(x) for x in open(f"/proc/{master}/task/{master}/children").read().split())
    except Exception: return []
stop=False; lat=[]; done_times=[]; fails=0
def client():
    global fails
    n=0
    while not stop and n<200000:
        n+=1
        t=time.monotonic()
        try:
            s=socket.create_connection(("127.0.0.1",port),timeout=15)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            d=b""
            while True:
                c=s.recv(4096)
                if not c: break
                d+=c
            s.close()
            if not d.startswith(b"HTTP/1.1 200"): fails+=1
        except Exception: fails+=1
        e=time.monotonic(); lat.append(e-t); done_times.append(e)
th=threading.Thread(target=client); th.start()
time.sleep(0.5)
start=time.monotonic()
for k in range(kills):
    dl=time.monotonic()+20
    while len(children())<2 and time.monotonic()<dl: time.sleep(0.005)
    ch=children()
    if not ch: break
    os.kill(max(ch),signal.SIGKILL)
    time.sleep(0.01)
dl=time.monotonic()+20
while len(children())<2 and time.monotonic()<dl: time.sleep(0.005)
end=time.monotonic()
time.sleep(0.5); stop=True; th.join()
gaps=[b-a for a,b in zip(done_times,done_times[1:]) if a>=start-0.5]
print(f"requests={len(lat)} fails={fails} max_latency_ms={max(lat)*1000:.1f} max_gap_without_completion_ms={max(gaps)*1000:.1f} kill_phase_s={end-start:.2f}")
