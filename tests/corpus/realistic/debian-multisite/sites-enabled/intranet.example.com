# An internal wiki: open to the office network, elsewhere behind a password.
server {
    listen 443 ssl;
    listen [::]:443 ssl;
    server_name intranet.example.com;

    ssl_certificate tls/intranet.example.com.crt;
    ssl_certificate_key tls/intranet.example.com.key;
    include snippets/tls.conf;
    include snippets/security-headers.conf;

    satisfy any;
    allow 192.168.10.0/24;
    allow 10.8.0.0/16;
    deny all;
    auth_basic "Intranet";
    auth_basic_user_file htpasswd/intranet;

    location / {
        include snippets/proxy.conf;
        proxy_pass http://127.0.0.1:3100;
    }

    # The health checker has no password.
    location = /healthz {
        auth_basic off;
        allow 127.0.0.1;
        deny all;
        include snippets/proxy.conf;
        proxy_pass http://127.0.0.1:3100;
    }
}

# Server statistics for the local monitoring agent.
server {
    listen 127.0.0.1:8080;
    server_name localhost;
    location = /nginx_status {
        stub_status;
        allow 127.0.0.1;
        deny all;
    }
}
