# The company web site: static pages and a PHP contact form, with a login rate limit.
server {
    listen 80;
    listen [::]:80;
    server_name example.com www.example.com;
    include snippets/acme.conf;
    location / {
        return 301 https://www.example.com$request_uri;
    }
}

server {
    listen 443 ssl;
    listen [::]:443 ssl;
    server_name example.com;
    ssl_certificate tls/www.example.com.crt;
    ssl_certificate_key tls/www.example.com.key;
    include snippets/tls.conf;
    return 301 https://www.example.com$request_uri;
}

server {
    listen 443 ssl;
    listen [::]:443 ssl;
    server_name www.example.com;

    ssl_certificate tls/www.example.com.crt;
    ssl_certificate_key tls/www.example.com.key;
    include snippets/tls.conf;
    include snippets/security-headers.conf;

    access_log logs/www.access.log timed;
    error_log logs/www.error.log;

    root /var/www/www.example.com;
    index index.html index.php;
    client_max_body_size 8m;

    limit_conn conn_per_ip 20;

    location / {
        try_files $uri $uri/ $uri.html =404;
    }

    location = /contact.php {
        limit_req zone=login burst=3 nodelay;
        include snippets/fastcgi-php.conf;
        fastcgi_pass unix:/run/php/php8.2-fpm.sock;
    }

    location ~ \.php$ {
        return 404;
    }

    location ~* \.(?:css|js|png|jpe?g|gif|svg|woff2)$ {
        expires 7d;
        access_log off;
        include snippets/security-headers.conf;
        add_header Cache-Control "public";
    }

    error_page 404 /404.html;
    error_page 500 502 503 504 /50x.html;
    location = /50x.html {
        root /usr/share/nginx/html;
    }
}
