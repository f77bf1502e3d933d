//! A browser family from a user-agent string, by simple token rules.

/// `Chrome`, `Firefox`, `Safari`, `Edge`, `bot` or `other`.
///
/// Rules, first match wins: bots (crawler tokens, command-line clients,
/// headless browsers); Edge (`Edg/`, `Edge/`, `EdgA/`, `EdgiOS/`); other
/// browsers that also claim Chrome or Safari (Opera, Samsung Internet,
/// Yandex, UC, Vivaldi) are `other`; Firefox (`Firefox/`, `FxiOS/`);
/// Chrome (`Chrome/`, `CriOS/`, `Chromium/`); Safari (`Safari/`);
/// everything else `other`.
pub fn family(user_agent: &str) -> &'static str {
    if is_bot(user_agent) {
        return "bot";
    }
    let has = |token: &str| user_agent.contains(token);
    if ["Edg/", "Edge/", "EdgA/", "EdgiOS/"].into_iter().any(has) {
        "Edge"
    } else if [
        "OPR/",
        "Opera",
        "SamsungBrowser/",
        "YaBrowser/",
        "UCBrowser/",
        "Vivaldi/",
    ]
    .into_iter()
    .any(has)
    {
        "other"
    } else if ["Firefox/", "FxiOS/"].into_iter().any(has) {
        "Firefox"
    } else if ["Chrome/", "CriOS/", "Chromium/"].into_iter().any(has) {
        "Chrome"
    } else if has("Safari/") {
        "Safari"
    } else {
        "other"
    }
}

/// Crawler tokens (`Googlebot/`, `bingbot`, `AhrefsBot`, `crawler`,
/// `spider`, `Slurp`), headless browsers and command-line HTTP clients.
/// `bot` counts only as the end of a word, so a phone model such as
/// `CUBOT X19` or a word like `bottle` is not a bot.
fn is_bot(user_agent: &str) -> bool {
    let ua = user_agent.to_ascii_lowercase();
    if ua.trim().is_empty() {
        return false;
    }
    const TOKENS: [&str; 11] = [
        "crawler",
        "spider",
        "slurp",
        "headlesschrome",
        "phantomjs",
        "facebookexternalhit",
        "curl/",
        "wget/",
        "python-requests/",
        "go-http-client/",
        "lighthouse",
    ];
    if TOKENS.iter().any(|t| ua.contains(t)) {
        return true;
    }
    ua.match_indices("bot").any(|(i, _)| {
        let after = ua[i + 3..].chars().next();
        let word_end = after.is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_');
        word_end && !ua[..i].ends_with("cu")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_WIN: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
    const CHROME_ANDROID: &str = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36";
    const CHROME_IOS: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1";
    const FIREFOX_MAC: &str =
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:121.0) Gecko/20100101 Firefox/121.0";
    const FIREFOX_IOS: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/121.0 Mobile/15E148 Safari/605.1.15";
    const SAFARI_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15";
    const SAFARI_IOS: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1";
    const EDGE_WIN: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91";
    const EDGE_LEGACY: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.19041";
    const EDGE_ANDROID: &str = "Mozilla/5.0 (Linux; Android 10; HD1913) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36 EdgA/120.0.2210.126";
    const OPERA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0";
    const SAMSUNG: &str = "Mozilla/5.0 (Linux; Android 13; SM-S901B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36";
    const GOOGLEBOT: &str =
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    const GOOGLEBOT_SMARTPHONE: &str = "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.71 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    const BINGBOT: &str = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)";
    const AHREFS: &str = "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)";
    const SLACK: &str = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)";
    const YAHOO: &str =
        "Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)";
    const HEADLESS: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36";
    const CUBOT: &str = "Mozilla/5.0 (Linux; Android 9; CUBOT X19 Build/PPR1.180610.011) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36";

    #[test]
    fn browsers() {
        for (ua, want) in [
            (CHROME_WIN, "Chrome"),
            (CHROME_ANDROID, "Chrome"),
            (CHROME_IOS, "Chrome"),
            (FIREFOX_MAC, "Firefox"),
            (FIREFOX_IOS, "Firefox"),
            (SAFARI_MAC, "Safari"),
            (SAFARI_IOS, "Safari"),
            (EDGE_WIN, "Edge"),
            (EDGE_LEGACY, "Edge"),
            (EDGE_ANDROID, "Edge"),
            (OPERA, "other"),
            (SAMSUNG, "other"),
            (CUBOT, "Chrome"),
        ] {
            assert_eq!(family(ua), want, "{ua}");
        }
    }

    #[test]
    fn bots() {
        for ua in [
            GOOGLEBOT,
            GOOGLEBOT_SMARTPHONE,
            BINGBOT,
            AHREFS,
            SLACK,
            YAHOO,
            HEADLESS,
            "curl/8.4.0",
            "Wget/1.21.4",
            "python-requests/2.31.0",
            "Go-http-client/1.1",
            "Twitterbot/1.0",
            "some-crawler",
        ] {
            assert_eq!(family(ua), "bot", "{ua}");
        }
    }

    #[test]
    fn others() {
        for ua in [
            "",
            "   ",
            "Mozilla/4.0",
            "my-app/1.0 (bottle rack)",
            "okhttp/4.12.0",
        ] {
            assert_eq!(family(ua), "other", "{ua:?}");
        }
    }
}
