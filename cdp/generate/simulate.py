"""Behaviour: what each person does on each simulated day.

Stages: awareness (ads, newsletters, first anonymous visits) → consideration (search,
product views, store visits, carts) → decision (checkout, orders online or in store)
→ service (refunds, tickets, appointments) → loyalty (card, points, repeat orders).
Cross-channel effects: online research raises the chance of buying in store (ROPO); a
store visit without purchase raises the chance of buying online (showrooming).
"""

from __future__ import annotations

import random
from typing import Any

from cdp.generate.basket import Line, basket, order_props, pick_product, product_props, quantity
from cdp.generate.catalog import (
    AD_NETWORKS,
    APPOINTMENT_TYPES,
    KIOSKS,
    SEARCH_TERMS,
    STORES,
    TICKET_TOPICS,
)
from cdp.generate.emission import Emitter
from cdp.generate.people import Browser, Device, Person, card_variant, email_variant, phone_variant

DAY = 86_400.0
HOUR = 3_600.0
INTEREST_DAYS = 30  # how long research or a store visit influences the other channel
SESSION_MIX: dict[str, tuple[tuple[str, float], ...]] = {
    "omni": (("web", 0.4), ("app", 0.25), ("store", 0.3), ("service", 0.05)),
    "online": (("web", 0.6), ("app", 0.35), ("store", 0.03), ("service", 0.02)),
    "store": (("store", 0.75), ("web", 0.17), ("app", 0.05), ("service", 0.03)),
}
P_REFUND = 0.06
P_TICKET_AFTER_ORDER = 0.07
P_CHECKOUT_DONE = 0.8
P_ALIAS = 0.3  # of first logins on a browser/device


class Simulator:
    def __init__(self, rng: random.Random, emitter: Emitter) -> None:
        self.rng = rng
        self.em = emitter
        self._orders = 0
        self._tickets = 0

    # -- helpers ---------------------------------------------------------------------
    def emit(self, p: Person, t: float, ev: dict[str, Any]) -> None:
        self.em.add(p.person_id, p.marketing, t, ev)

    def track(
        self,
        p: Person,
        t: float,
        channel: str,
        event: str,
        ids: dict[str, str],
        props: dict[str, Any],
        **extra: Any,
    ) -> None:
        """Emit one track call carrying ``ids`` (a fresh copy: events never share dicts)."""
        ev = {"type": "track", "event": event, "channel": channel, **extra}
        ev["identifiers"] = dict(ids)
        ev["properties"] = props
        self.emit(p, t, ev)

    def _category(self, p: Person, day: int) -> str:
        if p.interest and day - p.interest[1] <= INTEREST_DAYS and self.rng.random() < 0.6:
            return p.interest[0]
        x = self.rng.random()
        return p.categories[0 if x < 0.6 else 1 if x < 0.9 else 2]

    def _contact(self, p: Person) -> dict[str, str]:
        """Email and/or phone, as a service agent or booking form records them."""
        ids: dict[str, str] = {}
        rng = self.rng
        if p.emails and (not p.phone or rng.random() < 0.7):
            ids["email"] = email_variant(rng, rng.choice(p.emails))
        if p.phone and (not ids or rng.random() < 0.3):
            ids["phone"] = phone_variant(rng, p.phone)
        return ids

    def _order_id(self) -> str:
        self._orders += 1
        return f"ORD-{self._orders:08d}"

    # -- one day ---------------------------------------------------------------------
    def day(self, p: Person, d: int) -> None:
        if d < p.start_day or d >= p.churn_day:
            return
        rng = self.rng
        base = d * DAY
        if p.scheduled:
            self._scheduled(p, d, base + DAY)
        if p.card and not p.card_registered and d >= p.card_day:
            self.register_card(p, base + rng.uniform(10, 20) * HOUR)
        if p.newsletter and d % 7 == 2:
            self.newsletter(p, d, "weekly", f"nl-{d // 7:03d}", 0.35)
        x = rng.random()
        if x < p.rate:
            self.session(p, d)
            if x < p.rate * 0.15:  # a busy day: a second session
                self.session(p, d)

    def _scheduled(self, p: Person, d: int, until: float) -> None:
        due = [s for s in p.scheduled if s[0] < until]
        if not due:
            return
        p.scheduled = [s for s in p.scheduled if s[0] >= until]
        for t, kind, data in due:
            if kind == "refund":
                self.refund(p, t, data)
            elif kind == "ticket":
                self.ticket(p, t, data.get("order_id"))
            elif kind == "cart_email":
                self.newsletter(p, d, "abandoned-cart", f"ac-{d:03d}", 0.45, t)

    def session(self, p: Person, d: int) -> None:
        mix = [
            (kind, w)
            for kind, w in SESSION_MIX[p.persona]
            if (kind != "web" or p.browsers)
            and (kind != "app" or p.devices)
            and (kind != "service" or p.emails or p.phone)
        ]
        kind = self.rng.choices([k for k, _ in mix], [w for _, w in mix])[0]
        if kind in ("web", "app"):
            source = "ad" if self.rng.random() < (0.25 if p.orders == 0 else 0.08) else None
            self.online(p, d, kind, source)
        elif kind == "store":
            self.store(p, d)
        else:
            self.service(p, d)

    # -- online ----------------------------------------------------------------------
    def online(
        self, p: Person, d: int, channel: str, source: str | None, at: float | None = None
    ) -> None:
        rng = self.rng
        client: Browser | Device
        if channel == "web":
            client = p.browsers[0 if rng.random() < 0.65 else rng.randrange(len(p.browsers))]
            t = at or d * DAY + rng.triangular(7, 23.8, 20.5) * HOUR
        else:
            client = p.devices[0 if rng.random() < 0.7 else rng.randrange(len(p.devices))]
            t = at or d * DAY + rng.triangular(6.5, 23.9, 21) * HOUR
        ids: dict[str, str] = {}
        if isinstance(client, Device):
            ids["device_id"] = client.device_id
        elif rng.random() < 0.35:
            ids["cookie_id"] = client.cookie_id
        user = p.user_id if (client.logged_in and p.signed_up and rng.random() < 0.85) else None
        campaign: dict[str, str] | None = None

        def ev(type_: str, event: str | None = None, **kw: Any) -> dict[str, Any]:
            nonlocal t
            t += rng.uniform(5, 120)
            e: dict[str, Any] = {
                "type": type_,
                "channel": channel,
                "anonymousId": client.anonymous_id,
            }
            if event:
                e["event"] = event
            if user:
                e["userId"] = user
            if ids:
                e["identifiers"] = dict(ids)
            if campaign:
                e["context"] = {"campaign": dict(campaign)}
            e.update(kw)
            self.emit(p, t, e)
            return e

        category = self._category(p, d)
        if source == "ad":
            network = rng.choice(AD_NETWORKS)
            campaign = {"source": network, "medium": "cpc", "name": f"{category}-promo"}
            ad = {
                "ad_id": f"ad-{network}-{rng.randrange(1, 40):03d}",
                "campaign": f"{category}-promo",
                "network": network,
                "category": category,
            }
            ev("track", "Ad Clicked", properties=ad)
        elif source:
            campaign = {"source": "newsletter", "medium": "email", "name": source}
        if channel == "web":
            ev("track", "Page Viewed", properties={"path": "/", "url": "https://shop.example.nl/"})
        else:
            ev("track", "Application Opened", properties={"from_background": rng.random() < 0.4})
            ev("screen", name="Home")

        def login(first_time: bool) -> None:
            nonlocal user
            assert p.user_id is not None
            email = email_variant(rng, p.emails[0])
            if first_time:
                ev("track", "Signed Up", properties={"method": "email"})
            user = p.user_id
            ev("identify", traits={"email": email, "first_name": p.first.capitalize()})
            if not first_time:
                ev("track", "Signed In", properties={"method": "password"})
            if not client.logged_in and rng.random() < P_ALIAS:
                ev("alias", previousId=client.anonymous_id)
            client.logged_in = True

        can_sign_up = p.user_id is not None and not p.signed_up and d >= p.signup_day
        if can_sign_up and rng.random() < 0.7:
            p.signed_up = True
            login(first_time=True)
        elif p.signed_up and not user and rng.random() < 0.25:
            login(first_time=False)

        if rng.random() < 0.55:
            query = rng.choice(SEARCH_TERMS[category])
            ev("track", "Products Searched", properties={"query": query, "category": category})
        viewed = [pick_product(rng, category) for _ in range(1 + int(rng.expovariate(0.7)))]
        for product in viewed[:6]:
            ev("track", "Product Viewed", properties=product_props(product))

        intent = p.buy * (1 + 0.1 * min(p.orders, 5))
        if p.interest and p.interest[2] == "store" and d - p.interest[1] <= INTEREST_DAYS:
            intent *= 2.0  # showrooming: seen in the store, bought online
        if source and source != "ad":
            intent *= 1.5
        cart: list[Line] = []
        if rng.random() < min(0.8, 0.1 + intent):
            for product in viewed[: 1 if rng.random() < 0.8 else 2]:
                cart.append((product, quantity(rng)))
                ev("track", "Product Added", properties=product_props(*cart[-1]))
            if len(cart) > 1 or rng.random() < 0.1:
                removed = cart.pop()
                ev("track", "Product Removed", properties=product_props(*removed))
        if cart and rng.random() < min(0.75, 1.6 * intent):
            if p.signed_up and not user:
                login(first_time=False)
            elif p.user_id and not p.signed_up and rng.random() < 0.5:
                p.signed_up = True
                login(first_time=True)
            if not user and p.emails:  # guest checkout: email typed in the form
                ids["email"] = email_variant(rng, p.emails[0])
            lines = basket(rng, category, cart)
            order_id = self._order_id()
            ev("track", "Checkout Started", properties=order_props(order_id, lines))
            if rng.random() < P_CHECKOUT_DONE:
                ev("track", "Order Completed", properties=order_props(order_id, lines))
                self._after_order(p, t, order_id, lines, channel, online=True)
                if p.interest and p.interest[0] == category:
                    p.interest = None
                return
        if viewed:
            p.interest = (category, d, "online")
            if cart and p.newsletter and p.marketing:
                p.scheduled.append((t + rng.uniform(20, 30) * HOUR, "cart_email", {}))

    # -- store -----------------------------------------------------------------------
    def store(self, p: Person, d: int) -> None:
        rng = self.rng
        shop = STORES[p.idx % len(STORES)] if rng.random() < 0.8 else rng.choice(STORES)
        t = d * DAY + rng.uniform(9.5, 18.5) * HOUR
        ids: dict[str, str] = {}
        if p.card and p.card_registered and rng.random() < 0.8:
            ids["loyalty_card"] = card_variant(rng, p.card)
        elif p.pos_id and rng.random() < 0.7:
            ids["pos_customer_id"] = p.pos_id
        where = {"store_id": shop.store_id, "store_name": shop.name, "city": shop.city}
        if ids:
            self.track(p, t, "store", "Store Visited", ids, dict(where))
        elif p.devices and rng.random() < 0.3:  # the app's geofence noticed the visit
            dev = p.devices[0]
            device = {"device_id": dev.device_id}
            self.track(
                p, t, "store", "Store Visited", device, dict(where), anonymousId=dev.anonymous_id
            )
        category = self._category(p, d)
        if rng.random() < 0.15:  # the shared kiosk: one device_id, many people
            t += rng.uniform(60, 600)
            kiosk: dict[str, Any] = {"device_id": KIOSKS[shop.store_id]}
            if p.card and p.card_registered and rng.random() < 0.4:
                kiosk["loyalty_card"] = card_variant(rng, p.card)
            product = pick_product(rng, category)
            self.track(p, t, "store", "Product Viewed", kiosk, product_props(product) | where)

        buy = 0.4 + p.buy
        if p.interest and p.interest[2] == "online" and d - p.interest[1] <= INTEREST_DAYS:
            buy = min(0.9, buy + 0.25)  # ROPO: researched online, bought here
        if rng.random() >= buy:
            p.interest = (category, d, "store")
            return
        t += rng.uniform(5, 40) * 60
        till = dict(ids)
        if not till and p.emails and rng.random() < 0.25:
            till["email"] = email_variant(rng, p.emails[0])  # e-receipt
        lines = basket(rng, category, [])
        order_id = self._order_id()
        if till:
            props = order_props(order_id, lines, **where)
            self.track(p, t, "store", "Order Completed", till, props)
        self._after_order(p, t, order_id, lines, "store", online=False)
        if p.interest and p.interest[0] == category:
            p.interest = None

    # -- after an order: service and loyalty -----------------------------------------
    def _after_order(
        self, p: Person, t: float, order_id: str, lines: list[Line], channel: str, online: bool
    ) -> None:
        rng = self.rng
        p.orders += 1
        if p.card and p.card_registered and rng.random() < (0.04 if online else 0.12):
            points = {"points": rng.choice((100, 250, 500, 1000)), "order_id": order_id}
            self.loyalty(p, t + rng.uniform(30, 300), "Loyalty Points Redeemed", points)
        data = order_props(order_id, lines, order_channel=channel)
        if rng.random() < P_REFUND:
            p.scheduled.append((t + rng.uniform(2, 20) * DAY, "refund", data))
        if rng.random() < P_TICKET_AFTER_ORDER:
            p.scheduled.append((t + rng.uniform(1, 8) * DAY, "ticket", data))

    def refund(self, p: Person, t: float, data: dict[str, Any]) -> None:
        ids = self._contact(p)
        if data.get("order_channel") == "store" and p.card and p.card_registered:
            ids["loyalty_card"] = card_variant(self.rng, p.card)
        if ids:
            self.track(p, t, "service", "Order Refunded", ids, data)

    def ticket(self, p: Person, t: float, order_id: Any) -> None:
        self._tickets += 1
        ids = self._contact(p)
        if not ids:
            return
        topic = self.rng.choice(TICKET_TOPICS[:3] if order_id else TICKET_TOPICS[2:])
        props: dict[str, Any] = {"ticket_id": f"TCK-{self._tickets:07d}", "topic": topic}
        if order_id:
            props["order_id"] = order_id
        self.track(p, t, "service", "Support Ticket Opened", ids, props)

    def service(self, p: Person, d: int) -> None:
        rng = self.rng
        t = d * DAY + rng.uniform(8, 21) * HOUR
        if rng.random() < 0.5:
            self.ticket(p, t, None)
            return
        shop = STORES[p.idx % len(STORES)]
        ids = self._contact(p)
        when = (d + rng.randrange(1, 10)) * DAY + rng.randrange(10, 18) * HOUR
        props = {
            "appointment_type": rng.choice(APPOINTMENT_TYPES),
            "store_id": shop.store_id,
            "slot_offset_hours": round((when - t) / HOUR),
        }
        self.track(p, t, "service", "Appointment Booked", ids, props)

    # -- newsletter and loyalty ------------------------------------------------------
    def newsletter(
        self, p: Person, d: int, name: str, campaign_id: str, p_open: float, at: float = 0.0
    ) -> None:
        rng = self.rng
        if rng.random() >= p_open:
            return
        sent = at or d * DAY + 8 * HOUR
        t = sent + min(15 * HOUR, rng.expovariate(1 / (3 * HOUR)))
        props = {"email_id": f"{campaign_id}-{p.idx}", "campaign_id": campaign_id}
        props["campaign_name"] = name
        ids = {"email": email_variant(rng, p.emails[0])}
        self.track(p, t, "newsletter", "Email Opened", ids, props)
        if rng.random() < 0.3:
            t += rng.uniform(5, 120)
            link = props | {"link_url": "https://shop.example.nl/sale"}
            self.track(p, t, "newsletter", "Email Link Clicked", ids, link)
            if p.browsers:  # the click opens the web shop (not yet logged in, maybe)
                self.online(p, d, "web", campaign_id, at=t + rng.uniform(1, 20))

    def register_card(self, p: Person, t: float) -> None:
        p.card_registered = True
        self.loyalty(p, t, "Loyalty Card Registered", {"program": "Plus"})

    def loyalty(self, p: Person, t: float, event: str, props: dict[str, Any]) -> None:
        assert p.card is not None
        ids = {"loyalty_card": card_variant(self.rng, p.card)} | self._contact(p)
        self.track(p, t, "loyalty", event, ids, props)
