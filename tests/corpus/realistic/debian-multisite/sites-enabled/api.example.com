# A JSON API on two app servers, rate limited per client, logged as JSON.
upstream api_backend {
    server 127.0.0.1:8001 max_fails=3 fail_timeout=10s;
    server 127.0.0.1:8002 max_fails=3 fail_timeout=10s;
    keepalive 16;
}

server {
    listen 443 ssl;
    listen [::]:443 ssl;
    server_name api.example.com;

    ssl_certificate tls/api.example.com.crt;
    ssl_certificate_key tls/api.example.com.key;
    include snippets/tls.conf;

    access_log logs/api.access.log api_json;

    client_max_body_size 1m;

    location / {
        limit_req zone=per_ip burst=20 nodelay;
        include snippets/proxy.conf;
        proxy_pass http://api_backend;
    }

    location = /health {
        access_log off;
        default_type application/json;
        return 200 '{"status":"ok"}';
    }
}
