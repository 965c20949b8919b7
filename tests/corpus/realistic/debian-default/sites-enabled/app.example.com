# A small app behind the default site, set up with Debian's proxy_params snippet.

server {
    listen 80;
    listen [::]:80;
    server_name app.example.com;

    location / {
        include proxy_params;
        proxy_pass http://127.0.0.1:8080;
    }

    location /static/ {
        root /var/www/app;
    }
}
