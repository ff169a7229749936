// Reusable NEMS request bodies for unit, e2e and benchmark code: a Subscription model rendered to both FHIR XML
// and FHIR JSON, and a valid vaccinations-1 publish Bundle (~8 KB). Values match the example registry:
// gp-system ASID 200000000101, ODS A83627, mailbox A83627MB001; routing NHS number 9912003888.

import { CHILD_HEALTH_MAILBOX, CHILD_HEALTH_ODS, GP_SYSTEM_MAILBOX, GP_SYSTEM_ODS } from './endpoints.js';

export const GP_ODS = GP_SYSTEM_ODS;
export const GP_MAILBOX = GP_SYSTEM_MAILBOX;
export { CHILD_HEALTH_MAILBOX, CHILD_HEALTH_ODS };
export const EXAMPLE_NHS_NUMBER = '9912003888';
export const ODS_URL = 'https://directory.spineservices.nhs.uk/STU3/Organization/';
export const SUBSCRIPTION_PROFILE = 'https://fhir.nhs.uk/STU3/StructureDefinition/EMS-Subscription-1';

export interface ContactModel {
  system?: string;
  value?: string;
  use?: string;
}

/** One Subscription, format-neutral. `undefined` leaves an element out. */
export interface SubscriptionModel {
  id?: string;
  metaVersionId?: string;
  metaLastUpdated?: string;
  profile?: string;
  status?: string;
  contacts?: ContactModel[];
  end?: string;
  reason?: string;
  criteria?: string;
  channel?: { type?: string; endpoint?: string; header?: string };
  /** An extra top-level primitive element (e.g. `error`, or an unknown name), for allow-list tests. */
  extra?: { name: string; value: string };
}

export function explicitCriteria(nhsNumber = EXAMPLE_NHS_NUMBER, events: readonly string[] = ['pds-change-of-address-1']): string {
  return `/Bundle?type=message&serviceType=GP&Patient.identifier=http://fhir.nhs.net/Id/nhs-number|${nhsNumber}${events
    .map((e) => `&MessageHeader.event=${e}`)
    .join('')}`;
}

/** The valid explicit subscription for gp-system (A83627 / A83627MB001) and NHS number 9912003888. */
export const EXPLICIT_SUBSCRIPTION: Readonly<SubscriptionModel> = Object.freeze({
  profile: SUBSCRIPTION_PROFILE,
  status: 'requested',
  contacts: [{ system: 'url', value: `${ODS_URL}${GP_ODS}`, use: 'work' }],
  reason: 'Patient registered at the practice for direct care',
  criteria: explicitCriteria(),
  channel: { type: 'message', endpoint: GP_MAILBOX },
});

/** A valid generic subscription for child-health (RX3EP / RX3EPMB001). */
export const GENERIC_SUBSCRIPTION: Readonly<SubscriptionModel> = Object.freeze({
  profile: SUBSCRIPTION_PROFILE,
  status: 'requested',
  contacts: [{ system: 'url', value: `${ODS_URL}${CHILD_HEALTH_ODS}`, use: 'work' }],
  reason: 'Child health records for the area',
  criteria: '/Bundle?type=message&subscriptionRuleType=CHO_POSTCODE_CCG&Organization.identifier=X2458&MessageHeader.event=pds-change-of-address-1&tag=site123',
  channel: { type: 'message', endpoint: CHILD_HEALTH_MAILBOX },
});

function escapeAttr(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function prim(name: string, value: string | undefined, indent: string): string {
  return value === undefined ? '' : `${indent}<${name} value="${escapeAttr(value)}"/>\n`;
}

/** Renders the model as FHIR STU3 XML, elements in schema order. */
export function subscriptionXml(model: SubscriptionModel): string {
  let xml = '<?xml version="1.0" encoding="UTF-8"?>\n<Subscription xmlns="http://hl7.org/fhir">\n';
  xml += prim('id', model.id, '  ');
  if (model.profile !== undefined || model.metaVersionId !== undefined || model.metaLastUpdated !== undefined) {
    xml += '  <meta>\n';
    xml += prim('versionId', model.metaVersionId, '    ');
    xml += prim('lastUpdated', model.metaLastUpdated, '    ');
    xml += prim('profile', model.profile, '    ');
    xml += '  </meta>\n';
  }
  xml += prim('status', model.status, '  ');
  for (const contact of model.contacts ?? []) {
    xml += '  <contact>\n';
    xml += prim('system', contact.system, '    ');
    xml += prim('value', contact.value, '    ');
    xml += prim('use', contact.use, '    ');
    xml += '  </contact>\n';
  }
  xml += prim('end', model.end, '  ');
  xml += prim('reason', model.reason, '  ');
  xml += prim('criteria', model.criteria, '  ');
  if (model.channel) {
    xml += '  <channel>\n';
    xml += prim('type', model.channel.type, '    ');
    xml += prim('endpoint', model.channel.endpoint, '    ');
    xml += prim('header', model.channel.header, '    ');
    xml += '  </channel>\n';
  }
  if (model.extra) xml += prim(model.extra.name, model.extra.value, '  ');
  return `${xml}</Subscription>\n`;
}

/** Renders the same model as FHIR STU3 JSON. */
export function subscriptionJson(model: SubscriptionModel): string {
  const obj: Record<string, unknown> = { resourceType: 'Subscription' };
  if (model.id !== undefined) obj['id'] = model.id;
  if (model.profile !== undefined || model.metaVersionId !== undefined || model.metaLastUpdated !== undefined) {
    const meta: Record<string, unknown> = {};
    if (model.metaVersionId !== undefined) meta['versionId'] = model.metaVersionId;
    if (model.metaLastUpdated !== undefined) meta['lastUpdated'] = model.metaLastUpdated;
    if (model.profile !== undefined) meta['profile'] = [model.profile];
    obj['meta'] = meta;
  }
  if (model.status !== undefined) obj['status'] = model.status;
  if (model.contacts !== undefined && model.contacts.length > 0) {
    obj['contact'] = model.contacts.map((c) => ({
      ...(c.system !== undefined ? { system: c.system } : {}),
      ...(c.value !== undefined ? { value: c.value } : {}),
      ...(c.use !== undefined ? { use: c.use } : {}),
    }));
  }
  if (model.end !== undefined) obj['end'] = model.end;
  if (model.reason !== undefined) obj['reason'] = model.reason;
  if (model.criteria !== undefined) obj['criteria'] = model.criteria;
  if (model.channel) {
    obj['channel'] = {
      ...(model.channel.type !== undefined ? { type: model.channel.type } : {}),
      ...(model.channel.endpoint !== undefined ? { endpoint: model.channel.endpoint } : {}),
      ...(model.channel.header !== undefined ? { header: model.channel.header } : {}),
    };
  }
  if (model.extra) obj[model.extra.name] = model.extra.value;
  return JSON.stringify(obj, null, 2);
}

export const EXPLICIT_SUBSCRIPTION_XML = subscriptionXml(EXPLICIT_SUBSCRIPTION);
export const EXPLICIT_SUBSCRIPTION_JSON = subscriptionJson(EXPLICIT_SUBSCRIPTION);

export interface PublishOptions {
  /** Routing demographics NHS number. */
  nhsNumber?: string;
  /** The focus Patient's NHS number (defaults to the routing number). */
  patientNhsNumber?: string;
  eventCode?: string;
  messageEventType?: string;
  messageId?: string;
}

/**
 * A valid vaccinations-1 publish Bundle (about 8 KB), modelled on the IG example vaccinations-1-new.xml:
 * MessageHeader first, routing demographics for 9912003888, Immunization focus, Patient, Organization, Encounter.
 */
export function vaccinationPublishXml(opts: PublishOptions = {}): string {
  const nhsNumber = opts.nhsNumber ?? EXAMPLE_NHS_NUMBER;
  const patientNhsNumber = opts.patientNhsNumber ?? nhsNumber;
  const eventCode = opts.eventCode ?? 'vaccinations-1';
  const messageEventType = opts.messageEventType ?? 'new';
  const messageId = opts.messageId ?? '85c8a1c5-a8a1-41c9-bb99-20956fa66218';
  return `<?xml version="1.0" encoding="UTF-8"?>
<Bundle xmlns="http://hl7.org/fhir">
  <id value="6e824ff8-9b0a-11e8-9eb6-529269fb1459"/>
  <meta>
    <profile value="http://hl7.org/fhir/STU3/StructureDefinition/Bundle"/>
  </meta>
  <type value="message"/>
  <entry>
    <fullUrl value="urn:uuid:${messageId}"/>
    <resource>
      <MessageHeader>
        <id value="${messageId}"/>
        <meta>
          <lastUpdated value="2017-11-01T15:00:33+00:00"/>
          <profile value="https://fhir.nhs.uk/STU3/StructureDefinition/Event-MessageHeader-1"/>
        </meta>
        <extension url="https://fhir.nhs.uk/STU3/StructureDefinition/Extension-RoutingDemographics-1">
          <extension url="nhsNumber">
            <valueIdentifier>
              <system value="https://fhir.nhs.uk/Id/nhs-number"/>
              <value value="${nhsNumber}"/>
            </valueIdentifier>
          </extension>
          <extension url="name">
            <valueHumanName>
              <use value="official"/>
              <family value="DAWKINS"/>
              <given value="Jack"/>
            </valueHumanName>
          </extension>
          <extension url="birthDateTime">
            <valueDateTime value="2017-10-02T12:00:00+00:00"/>
          </extension>
        </extension>
        <extension url="https://fhir.nhs.uk/STU3/StructureDefinition/Extension-MessageEventType-1">
          <valueCodeableConcept>
            <coding>
              <system value="https://fhir.nhs.uk/STU3/CodeSystem/MessageEventType-1"/>
              <code value="${messageEventType}"/>
              <display value="New event message"/>
            </coding>
          </valueCodeableConcept>
        </extension>
        <event>
          <system value="https://fhir.nhs.uk/STU3/CodeSystem/EventType-1"/>
          <code value="${eventCode}"/>
          <display value="Vaccinations"/>
        </event>
        <timestamp value="2017-02-14T15:00:00+00:00"/>
        <source>
          <contact>
            <system value="phone"/>
            <value value="0191 1231234"/>
          </contact>
          <endpoint value="urn:nhs:addressing:asid:200000000101"/>
        </source>
        <responsible>
          <reference value="urn:uuid:3ff6d789-af64-4d9c-aa1d-0087d29e9e1c"/>
          <display value="SILVERDALE FAMILY PRACTICE"/>
        </responsible>
        <focus>
          <reference value="urn:uuid:076db265-8799-4dda-9418-e2a4d6d1c0d0"/>
        </focus>
      </MessageHeader>
    </resource>
  </entry>
  <entry>
    <fullUrl value="urn:uuid:076db265-8799-4dda-9418-e2a4d6d1c0d0"/>
    <resource>
      <Immunization>
        <id value="076db265-8799-4dda-9418-e2a4d6d1c0d0"/>
        <meta>
          <profile value="https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Immunization-1"/>
        </meta>
        <extension url="https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-VaccinationProcedure-1">
          <valueCodeableConcept>
            <coding>
              <system value="http://snomed.info/sct"/>
              <code value="170433008"/>
              <display value="Measles mumps and rubella vaccination - second dose (procedure)"/>
            </coding>
          </valueCodeableConcept>
        </extension>
        <identifier>
          <system value="https://supplierABC/identifiers"/>
          <value value="abc1111"/>
        </identifier>
        <status value="completed"/>
        <notGiven value="false"/>
        <vaccineCode>
          <coding>
            <system value="http://snomed.info/sct"/>
            <code value="34925411000001109"/>
            <display value="Priorix vaccine powder and solvent for solution for injection 0.5ml pre-filled syringes (GlaxoSmithKline UK Ltd) 1 pre-filled disposable injection (product)"/>
          </coding>
        </vaccineCode>
        <patient>
          <reference value="urn:uuid:5d5845f3-398f-474b-af59-14882fc7b0ca"/>
        </patient>
        <encounter>
          <reference value="urn:uuid:0b5365ea-5eb5-4119-bfad-c6dfe0874b1b"/>
        </encounter>
        <date value="2017-02-14T12:00:00+00:00"/>
        <primarySource value="true"/>
        <lotNumber value="CCJN12M"/>
        <site>
          <coding>
            <system value="http://snomed.info/sct"/>
            <code value="91775009"/>
            <display value="Structure of left shoulder region"/>
          </coding>
        </site>
        <route>
          <coding>
            <system value="http://snomed.info/sct"/>
            <code value="34206005"/>
            <display value="Subcutaneous route"/>
          </coding>
        </route>
        <doseQuantity>
          <value value="0.5"/>
          <system value="http://unitsofmeasure.org"/>
          <code value="ml"/>
        </doseQuantity>
        <explanation>
          <reason>
            <coding>
              <system value="http://snomed.info/sct"/>
              <code value="864611000000103"/>
              <display value="Recommendation to have child immunised against measles, mumps and rubella"/>
            </coding>
          </reason>
        </explanation>
      </Immunization>
    </resource>
  </entry>
  <entry>
    <fullUrl value="urn:uuid:3ff6d789-af64-4d9c-aa1d-0087d29e9e1c"/>
    <resource>
      <Organization>
        <id value="3ff6d789-af64-4d9c-aa1d-0087d29e9e1c"/>
        <meta>
          <profile value="https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Organization-1"/>
        </meta>
        <identifier>
          <system value="https://fhir.nhs.uk/Id/ods-organization-code"/>
          <value value="${GP_ODS}"/>
        </identifier>
        <name value="SILVERDALE FAMILY PRACTICE"/>
        <address>
          <line value="FRONT STREET"/>
          <line value="SOUTH HETTON"/>
          <city value="DURHAM"/>
          <district value="COUNTY DURHAM"/>
          <postalCode value="DH6 2TH"/>
        </address>
      </Organization>
    </resource>
  </entry>
  <entry>
    <fullUrl value="urn:uuid:5d5845f3-398f-474b-af59-14882fc7b0ca"/>
    <resource>
      <Patient>
        <id value="5d5845f3-398f-474b-af59-14882fc7b0ca"/>
        <meta>
          <profile value="https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Patient-1"/>
        </meta>
        <identifier>
          <extension url="https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-NHSNumberVerificationStatus-1">
            <valueCodeableConcept>
              <coding>
                <system value="https://fhir.hl7.org.uk/STU3/CodeSystem/CareConnect-NHSNumberVerificationStatus-1"/>
                <code value="01"/>
                <display value="Number present and verified"/>
              </coding>
            </valueCodeableConcept>
          </extension>
          <system value="https://fhir.nhs.uk/Id/nhs-number"/>
          <value value="${patientNhsNumber}"/>
        </identifier>
        <name>
          <use value="official"/>
          <family value="DAWKINS"/>
          <given value="Jack"/>
        </name>
        <gender value="male"/>
        <birthDate value="2017-10-02"/>
        <address>
          <use value="home"/>
          <line value="4 Sandmoor Drive"/>
          <city value="DURHAM"/>
          <postalCode value="DH1 2TF"/>
        </address>
      </Patient>
    </resource>
  </entry>
  <entry>
    <fullUrl value="urn:uuid:0b5365ea-5eb5-4119-bfad-c6dfe0874b1b"/>
    <resource>
      <Encounter>
        <id value="0b5365ea-5eb5-4119-bfad-c6dfe0874b1b"/>
        <meta>
          <profile value="https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Encounter-1"/>
        </meta>
        <status value="finished"/>
        <type>
          <coding>
            <system value="https://fhir.nhs.uk/STU3/CodeSystem/DCH-ChildHealthEncounterType-1"/>
            <code value="0012"/>
            <display value="12 week immunisations"/>
          </coding>
        </type>
        <subject>
          <reference value="urn:uuid:5d5845f3-398f-474b-af59-14882fc7b0ca"/>
          <display value="DAWKINS, Jack"/>
        </subject>
        <period>
          <start value="2017-02-14"/>
        </period>
        <serviceProvider>
          <reference value="urn:uuid:3ff6d789-af64-4d9c-aa1d-0087d29e9e1c"/>
          <display value="SILVERDALE FAMILY PRACTICE"/>
        </serviceProvider>
      </Encounter>
    </resource>
  </entry>
</Bundle>
`;
}

export const VACCINATION_PUBLISH_XML = vaccinationPublishXml();
