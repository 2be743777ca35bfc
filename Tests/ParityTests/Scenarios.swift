import Foundation
import StranglerTesting

/// The parity scenarios: every endpoint of contacts, leads and deals, reads and writes, errors included. Variables are
/// the ids of ``SampleData``; `{{unique}}` keeps each target's records apart.
enum Scenarios {
    /// What a write makes differently on each side: the record's times (its id, when the step captures it, is
    /// compared as `{{id}}`; a dry-run create's id, which nothing captures, is ignored with its `Location`).
    static let made = ["/createdAt", "/updatedAt"]
    static let dryMade = ["/id", "/createdAt", "/updatedAt"]
    /// The same inside a page of such records.
    static let madeItems = ["/items/*/createdAt", "/items/*/updatedAt"]

    static func contactReads(_ ids: [String: String]) -> Scenario {
        Scenario(
            "contacts: reads, filters, pages and errors", variables: ids,
            steps: [
                .get("/contacts").expecting(200),
                .get("/contacts?limit=2").expecting(200).capture("page2", "/next"),
                .get("/contacts?limit=2&after={{page2}}").expecting(200).capture("page3", "/next"),
                .get("/contacts?limit=2&after={{page3}}").expecting(200),
                .get("/contacts?limit=200&after="),
                .get("/contacts?email=ADA@acme.EXAMPLE.com").expecting(200),
                .get("/contacts?accountId={{globex}}&limit=3").expecting(200),
                .get("/contacts?email=nobody@example.com").expecting(200),
                .get("/contacts?limit=0").expecting(422),
                .get("/contacts?limit=abc&after=%25%25").expecting(422),
                .get("/contacts/{{ada}}").expecting(200),
                .get("/contacts/{{grace}}").expecting(200),
                .get("/contacts/{{linus}}").expecting(200),
                .get("/contacts/{{gone}}").expecting(404),
                .get("/contacts/con_00000000000000000000").expecting(404),
                .get("/contacts/not-an-id!"),
                .get("/accounts/{{acme}}/contacts").expecting(200),
                .get("/accounts/{{globex}}/contacts?limit=1").expecting(200),
                .get("/accounts/acc_00000000000000000000/contacts").expecting(404),
                .get("/accounts/bad.id/contacts"),
                // Corners of the query and the path.
                .get("/contacts?limit=200").expecting(200),
                .get("/contacts?limit=201").expecting(422),
                .get("/contacts?limit=-1"),
                .get("/contacts?after=zzzz"),
                .get("/contacts?after=Y29uXzAw"),
                .get("/contacts?limit=1&limit=2"),
                .get("/contacts?email="),
                .get("/contacts?email=Ada%40Acme.example.com"),
                .get("/contacts?accountId=bad.id"),
                .get("/contacts?unknown=1&limit=1"),
                .get("/contacts/{{ada}}?fields=all"),
                .get("/contacts/"),
                .get("/contacts/{{ada}}/"),
                Step("HEAD", "/contacts/{{ada}}"),
                Step("OPTIONS", "/contacts"),
            ])
    }

    static func contactWrites(_ ids: [String: String]) -> Scenario {
        let body =
            #"{"accountId":"{{acme}}","firstName":"New","lastName":"Person","email":"new-{{unique}}@acme.example.com","#
            + #""tags":["a","b"]}"#
        return Scenario(
            "contacts: create, read, change, conflicts, delete", variables: ids,
            steps: [
                .post("/contacts", json: body).expecting(201).capture("id", "/id").ignoring(made),
                .get("/contacts/{{id}}").expecting(200).ignoring(made),
                .get("/contacts?email=NEW-{{unique}}@acme.example.com").expecting(200).ignoring(madeItems),
                .post("/contacts", json: body).expecting(409).named("POST /contacts with a used e-mail (duplicate)"),
                .post("/contacts", json: "{}").expecting(422),
                .post(
                    "/contacts",
                    json:
                        #"{"accountId":"","firstName":"","lastName":null,"email":"nope","phone":"abc","title":7,"#
                        + #""tags":[1],"id":"x","extra":true}"#
                )
                .expecting(422),
                .post(
                    "/contacts",
                    json:
                        #"{"accountId":"acc_00000000000000000000","firstName":"A","lastName":"B","email":"a-{{unique}}"#
                        + #"@b.example.com"}"#
                )
                .expecting(422),
                .post("/contacts", json: "{}").setHeader("Content-Type", "text/plain").expecting(415),
                .post("/contacts", json: nil).expecting(400),
                .post("/contacts", json: #"{"firstName": }"#).expecting(400),
                .post("/contacts", json: body.replacingFirst("new-", with: "dry-")).dryRun().expecting(201).ignoring(
                    dryMade
                ).ignoringHeaders("location"),
                .patch("/contacts/{{id}}", json: #"{"title":"CTO","phone":"+1 555 0100"}"#).ifMatch("1").expecting(200)
                    .ignoring(made),
                .patch("/contacts/{{id}}", json: #"{"title":"CEO"}"#).ifMatch("1").expecting(409).named(
                    "PATCH with a stale If-Match (version_conflict)"),
                .patch("/contacts/{{id}}", json: #"{"title":"CEO"}"#).ifMatch("soon").expecting(400),
                .patch("/contacts/{{id}}", json: #"{"title":"CTO"}"#).expecting(200).ignoring(made).named(
                    "PATCH that changes nothing"),
                .patch("/contacts/{{id}}", json: #"{"email":"ada@ACME.example.com"}"#).expecting(409),
                .patch("/contacts/{{id}}", json: #"{"firstName":null,"convertedAt":"now","tags":null}"#).expecting(422),
                .patch("/contacts/{{id}}", json: #"{"lastName":"Dry"}"#).dryRun().expecting(200).ignoring(made),
                .get("/contacts/{{id}}").expecting(200).ignoring(made),
                .patch("/contacts/{{ada}}", json: #"{"accountId":"{{globex}}"}"#).dryRun().named(
                    "moving a contact that has deals"),
                .put("/contacts/{{id}}", json: "{}"),
                .delete("/contacts/{{ada}}").expecting(409).named("DELETE a contact with a deal (has_dependents)"),
                .delete("/contacts/{{id}}").dryRun().expecting(204),
                .delete("/contacts/{{id}}").ifMatch("\"7\"").expecting(409),
                .delete("/contacts/{{id}}").ifMatch("W/\"2\"").expecting(204),
                .get("/contacts/{{id}}").expecting(404),
                .delete("/contacts/{{id}}").expecting(404),
                .post(
                    "/contacts",
                    json:
                        #"{"accountId":"{{acme}}","firstName":"Zoë 𝄞","lastName":"O'Brien","#
                        + #""email":"Zoe+tag-{{unique}}@Acme.example.com","tags":[]}"#
                )
                .expecting(201).capture("zoe", "/id").ignoring(made),
                .get("/contacts?email=zoe%2Btag-{{unique}}@acme.example.com").expecting(200).ignoring(madeItems),
                .patch("/contacts/{{zoe}}", json: "{}").expecting(200).ignoring(made).named("PATCH {} (no change)"),
                .patch("/contacts/{{zoe}}", json: #"{"title":"Lead"}"#).ifMatch("*").expecting(200).ignoring(made),
                .patch("/contacts/{{zoe}}", json: #"{"tags":["x","x","y"],"phone":""}"#).ignoring(made),
                .patch("/contacts/{{zoe}}", json: #"{"email":"not an address"}"#).expecting(422),
                .patch("/contacts/{{zoe}}", json: "[]").expecting(422),
                .delete("/contacts/{{zoe}}").ifMatch("*").expecting(204),
                .get("/contacts").expecting(200),
                .get("/accounts/{{acme}}/contacts").expecting(200),
            ])
    }

    static func leadReads(_ ids: [String: String]) -> Scenario {
        Scenario(
            "leads: reads, filters, pages and errors", variables: ids,
            steps: [
                .get("/leads").expecting(200),
                .get("/leads?limit=2").expecting(200).capture("page2", "/next"),
                .get("/leads?limit=2&after={{page2}}").expecting(200).capture("page3", "/next"),
                .get("/leads?limit=2&after={{page3}}").expecting(200),
                .get("/leads?status=converted").expecting(200),
                .get("/leads?status=qualified&limit=1").expecting(200),
                .get("/leads?status=won").expecting(422),
                .get("/leads?status=won&limit=900").expecting(422),
                .get("/leads/{{fresh}}").expecting(200),
                .get("/leads/{{working}}").expecting(200),
                .get("/leads/{{converted}}").expecting(200),
                .get("/leads/{{lostLead}}").expecting(404),
                .get("/leads/x.y"),
                .get("/leads?status=NEW"),
                .get("/leads?status=new&status=working"),
                .get("/leads?limit=-1").expecting(422),
                .get("/leads?after=%%%"),
            ])
    }

    static func leadWrites(_ ids: [String: String]) -> Scenario {
        Scenario(
            "leads: create, change, conflicts, delete", variables: ids,
            steps: [
                .post(
                    "/leads",
                    json: #"{"name":"Grace","email":"grace-{{unique}}@navy.example.org","company":"Navy","score":12}"#
                ).expecting(201)
                    .capture("id", "/id").ignoring(made),
                .get("/leads/{{id}}").expecting(200).ignoring(made),
                .post(
                    "/leads",
                    json: #"{"name":"","email":"no","score":101,"status":"converted","company":5,"convertedAt":"x"}"#
                ).expecting(422),
                .post(
                    "/leads",
                    json:
                        #"{"name":"N","email":"n@lead.example.com","score":2.5,"status":"won","#
                        + #""source":"\#(String(repeating: "s", count: 51))"}"#
                )
                .expecting(422),
                .post("/leads", json: #"{"name":"N","email":"n@lead.example.com","score":"high"}"#).expecting(422),
                .post(
                    "/leads",
                    json:
                        #"{"name":"Dry Run","email":"dry-{{unique}}@lead.example.com","score":3.0,"#
                        + #""status":"qualified"}"#
                ).dryRun().expecting(201)
                    .ignoring(dryMade).ignoringHeaders("location"),
                .patch("/leads/{{id}}", json: #"{"status":"working","score":50}"#).ifMatch("1").expecting(200).ignoring(
                    made),
                .patch("/leads/{{id}}", json: #"{"score":1}"#).ifMatch("1").expecting(409),
                .patch("/leads/{{id}}", json: #"{"name":null}"#).expecting(422),
                .patch("/leads/{{converted}}", json: #"{"score":1}"#).expecting(409).named("PATCH a converted lead"),
                .patch("/leads/{{id}}", json: #"{"status":"disqualified","company":null}"#).dryRun().expecting(200)
                    .ignoring(made),
                .get("/leads?status=working").expecting(200).ignoring(madeItems),
                .patch("/leads/{{id}}", json: #"{"status":"converted"}"#).expecting(422),
                .patch("/leads/{{id}}", json: #"{"score":100,"source":"web"}"#).expecting(200).ignoring(made),
                .patch("/leads/{{id}}", json: #"{"score":-1}"#).expecting(422),
                .patch("/leads/{{id}}", json: #"{"email":"GRACE-{{unique}}@Navy.example.org"}"#).ignoring(made),
                .delete("/leads/{{id}}").dryRun().expecting(204),
                .delete("/leads/{{id}}").ifMatch("1").expecting(409),
                .delete("/leads/{{id}}").expecting(204),
                .get("/leads/{{id}}").expecting(404),
                .delete("/leads/{{lostLead}}").expecting(404),
                .get("/leads").expecting(200),
            ])
    }

    static func dealReads(_ ids: [String: String]) -> Scenario {
        Scenario(
            "deals: reads, filters, pipeline and errors", variables: ids,
            steps: [
                .get("/deals").expecting(200),
                .get("/deals?limit=1").expecting(200).capture("page2", "/next"),
                .get("/deals?limit=1&after={{page2}}").expecting(200).capture("page3", "/next"),
                .get("/deals?limit=1&after={{page3}}").expecting(200),
                .get("/deals?stage=negotiation").expecting(200),
                .get("/deals?stage=closed&limit=0").expecting(422),
                .get("/deals?accountId={{acme}}&contactId={{ada}}").expecting(200),
                .get("/deals/{{deal}}").expecting(200),
                .get("/deals/{{kernel}}").expecting(200),
                .get("/deals/deal_00000000000000000000").expecting(404),
                .get("/accounts/{{acme}}/deals").expecting(200),
                .get("/accounts/{{globex}}/deals?stage=won").expecting(200),
                .get("/accounts/acc_00000000000000000000/deals").expecting(404),
                .get("/pipeline").expecting(200),
            ])
    }

    static func dealWrites(_ ids: [String: String]) -> Scenario {
        Scenario(
            "deals: create, move through the pipeline, conflicts, delete", variables: ids,
            steps: [
                .post(
                    "/deals",
                    json:
                        #"{"accountId":"{{acme}}","contactId":"{{grace}}","name":"Deal {{unique}}","amount":1000,"#
                        + #""currency":"GBP","stage":"qualification"}"#
                )
                .expecting(201).capture("id", "/id").ignoring(made),
                .get("/deals/{{id}}").expecting(200).ignoring(made),
                .post(
                    "/deals",
                    json: #"{"accountId":"{{acme}}","contactId":"{{linus}}","name":"X","amount":1,"currency":"EUR"}"#
                ).expecting(422)
                    .named("POST a deal whose contact belongs to another account"),
                .post(
                    "/deals",
                    json:
                        #"{"accountId":"acc_00000000000000000000","contactId":"con_00000000000000000000","name":"X","#
                        + #""amount":1,"currency":"EUR"}"#
                )
                .expecting(422),
                .post(
                    "/deals",
                    json:
                        #"{"accountId":"{{acme}}","name":"","amount":1.5,"currency":"eur","stage":"closed","#
                        + #""expectedCloseDate":"2027-02-29","probability":101}"#
                )
                .expecting(422),
                .post("/deals", json: #"{"accountId":"{{acme}}","name":"Dry","amount":5,"currency":"USD"}"#).dryRun()
                    .expecting(201).ignoring(dryMade)
                    .ignoringHeaders("location"),
                .patch("/deals/{{id}}", json: #"{"stage":"proposal","amount":1200}"#).ifMatch("1").expecting(200)
                    .ignoring(made),
                .patch("/deals/{{id}}", json: #"{"stage":"won"}"#).ifMatch("1").expecting(409),
                .patch("/deals/{{id}}", json: #"{"contactId":"{{linus}}"}"#).expecting(422),
                .patch("/deals/{{id}}", json: #"{"stage":"won","expectedCloseDate":null}"#).dryRun().expecting(200)
                    .ignoring(made),
                .get("/pipeline").expecting(200),
                .get("/accounts/{{acme}}/deals").expecting(200),
                .post(
                    "/deals",
                    json:
                        #"{"accountId":"{{globex}}","name":"Big {{unique}}","amount":999999999999,"currency":"JPY","#
                        + #""probability":0,"expectedCloseDate":"2028-02-29"}"#
                )
                .expecting(201).capture("big", "/id").ignoring(made),
                .post(
                    "/deals",
                    json:
                        #"{"accountId":"{{globex}}","name":"Zero","amount":0,"currency":"EUR","#
                        + #""expectedCloseDate":"2027-13-01"}"#
                ),
                .patch("/deals/{{big}}", json: #"{"stage":"lost"}"#).expecting(200).ignoring(made),
                .patch("/deals/{{big}}", json: #"{"stage":"won","probability":50}"#).ignoring(made),
                .patch("/deals/{{big}}", json: #"{"accountId":"{{acme}}"}"#).ignoring(made),
                .get("/deals?stage=lost&accountId={{globex}}").expecting(200).ignoring(madeItems),
                .get("/pipeline").expecting(200),
                .delete("/deals/{{id}}").dryRun().expecting(204),
                .delete("/deals/{{id}}").expecting(204),
                .get("/deals/{{id}}").expecting(404),
                .delete("/deals/deal_00000000000000000000").expecting(404),
                .get("/pipeline").expecting(200),
            ])
    }
}

extension Step {
    func ignoring(_ pointers: [String]) -> Step {
        var step = self
        step.ignore += pointers
        return step
    }
}

extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = self.range(of: target) else { return self }
        return self.replacingCharacters(in: range, with: replacement)
    }
}
