"""Media checks and derived assets: `probe` (is it a decodable image or video) and `derive` (thumbnails,
spritesheets). The sandbox's synthetic rendering lives beside it, in `app.providers.sandbox`."""
