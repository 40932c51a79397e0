import re,subprocess,sys,collections
data=sys.argv[1]
out=subprocess.run(['perf','report','-i',data,'--no-children','--sort','symbol','--stdio','-g','none'],capture_output=True,text=True).stdout
cats=collections.OrderedDict()
rules=[
 ('kernel: network (TCP/loopback)', r'\[k\].*(tcp|ip_|skb|net_|sock|inet|__dev|loopback|napi|nf_|sk_|__x64_sys_sendto|__x64_sys_recvfrom|__sys_)'),
 ('kernel: scheduling, wakeups, futex', r'\[k\].*(sched|switch|futex|wake|spin|schedule|ttwu|enqueue|dequeue|idle|irq|rcu|hrtimer|epoll|ep_)'),
 ('kernel: other', r'\[k\]'),
 ('allocation and copies (malloc/free/memcpy)', r'malloc|free|memmove|memcpy|memset|realloc|_int_|cfree|arena|tcache|alloc::|\bmi_|_mi_'),
 ('SQLite', r'sqlite3|sqlite'),
 ('sqlx (SQLite worker, rows)', r'sqlx|flume'),
 ('sea-orm / sea-query (query building, row mapping)', r'sea_orm|sea_query'),
 ('prost (protobuf)', r'prost'),
 ('HTTP/2 and gRPC transport (h2, hyper, tonic, tower)', r'\bh2::|hyper|tonic|tower|http::|httparse|bytes::'),
 ('tracing / telemetry span layer', r'tracing|opentelemetry|telemetry'),
 ('AES-GCM', r'aes|gcm|ghash|polyval'),
 ('scope globs (globset, regex)', r'globset|regex|aho_corasick'),
 ('tokio runtime', r'tokio|parking_lot|crossbeam|mio'),
 ('Latchkey code', r'latchkey'),
]
total=0.0
for line in out.splitlines():
    m=re.match(r'\s+([0-9.]+)%\s+(\[.\])\s+(.*\S)',line)
    if not m: continue
    pct=float(m.group(1)); sym=m.group(2)+' '+m.group(3)
    total+=pct
    for name,rx in rules:
        if re.search(rx,sym):
            cats[name]=cats.get(name,0)+pct; break
    else:
        cats['other']=cats.get('other',0)+pct
for k,v in sorted(cats.items(),key=lambda x:-x[1]):
    print(f"{v:6.1f}%  {k}")
print(f"{total:6.1f}%  total")
