# bench/gen_samples.py N FILE.jsonl: writes N one-minute successes ending about now, as `export --format jsonl` writes them.
import json, datetime, random, sys
n=int(sys.argv[1]); random.seed(1)
now=datetime.datetime.now(datetime.timezone.utc).replace(second=0,microsecond=0)
t0=now-datetime.timedelta(minutes=n+5)
srv=[{"id":i,"name":f"Server {i}","location":"Town","country":"Land","host":f"s{i}.example.net"} for i in range(20)]
with open(sys.argv[2],"w") as f:
  for i in range(n):
    t=(t0+datetime.timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if i%17==0:
      s={"time":t,"outcome":"failure","reason":"no_connectivity","message":"Error: [0] Cannot open socket","trigger":"schedule","duration_seconds":3.1,"download_bytes_per_second":None,"upload_bytes_per_second":None,"ping_seconds":None,"jitter_seconds":None,"packet_loss_ratio":None,"download_latency_seconds":None,"upload_latency_seconds":None,"downloaded_bytes":None,"uploaded_bytes":None,"server":None,"isp":None,"result_url":None}
    else:
      s={"time":t,"outcome":"success","reason":None,"message":None,"trigger":"schedule","duration_seconds":round(random.uniform(15,25),3),"download_bytes_per_second":float(random.randint(10_000_000,120_000_000)),"upload_bytes_per_second":float(random.randint(1_000_000,20_000_000)),"ping_seconds":random.randint(1000,30000)/1e6,"jitter_seconds":random.randint(100,3000)/1e6,"packet_loss_ratio":0.0,"download_latency_seconds":0.02,"upload_latency_seconds":0.03,"downloaded_bytes":random.randint(10**8,10**9),"uploaded_bytes":random.randint(10**7,10**8),"server":random.choice(srv),"isp":"Example ISP","result_url":"https://www.speedtest.net/result/c/00000000-0000-0000-0000-%012d"%i}
    f.write(json.dumps(s)+"\n")
