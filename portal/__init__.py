"""The top layer (layer 4): pages and services that compose several apps
(member dashboard, data export, help centre and assistant, operators'
dashboard). It may import every app below it; nothing imports it."""
